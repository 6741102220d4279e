"""Weight mappings: exact integer MVM, MDM bookkeeping, NF, search, wrappers."""

from __future__ import annotations

import doctest
import importlib
import itertools
import json

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.mapping import (
    IDEAL,
    PRESETS,
    CircuitParams,
    MappingConfig,
    MappingError,
    conv2d_weight_matrix,
    effective_conductance,
    im2col,
    integer_output,
    layer_nf,
    layer_output,
    load_weights,
    map_layer,
    quantize_inputs,
    quantize_weights,
    row_scores,
    search_row_order,
    tile_crossbar,
    tile_nf,
)

CIRCUIT = CircuitParams(r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0)


def _weights(k: int = 20, o: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(k, o)) * np.exp(rng.normal(size=(k, 1)))


# ------------------------------------------------------------- exact integer MVM
@pytest.mark.parametrize("layout", sorted(PRESETS))
@pytest.mark.parametrize("sign", ["differential", "offset"])
@pytest.mark.parametrize("bits_per_cell", [1, 2, 3, 4])
@pytest.mark.parametrize("input_mode", ["dac", "bit_serial"])
def test_ideal_mapping_equals_integer_mvm(layout: str, sign: str, bits_per_cell: int,
                                          input_mode: str) -> None:
    w = _weights()
    config = MappingConfig.preset(layout, tile_rows=8, tile_cols=12, sign=sign,
                                  bits_per_cell=bits_per_cell, input_mode=input_mode,
                                  input_bits=4, weight_bits=7, granularity="channel")
    layer = map_layer(w, config)
    x = np.random.default_rng(1).integers(-15, 16, size=(4, 20))
    reference = x @ layer.weights.q  # independent: numpy integer product
    y = integer_output(layer, x)  # ideal circuit: V·G of each tile, then shift-and-add
    assert np.abs(y - reference).max() < 1e-6
    assert np.array_equal(np.rint(y).astype(np.int64), reference)


def test_ideal_circuit_through_solve_is_exact() -> None:
    """The same identity through solve() with every parasitic at zero."""
    layer = map_layer(_weights(), tile_rows=8, tile_cols=16, row_order="mdm",
                      column_order="planes_low_first", bits_per_cell=2)
    x = np.random.default_rng(2).integers(0, 256, size=(3, 20))
    y = integer_output(layer, x, IDEAL, method="solve")
    assert np.array_equal(np.rint(y).astype(np.int64), x @ layer.weights.q)


def test_uniform_user_levels_are_exact_and_uneven_levels_are_not() -> None:
    w = _weights()
    x = np.random.default_rng(3).integers(0, 256, size=(3, 20))
    even = map_layer(w, bits_per_cell=2, levels=(1e-6, 2e-6, 3e-6, 4e-6), tile_cols=16)
    assert np.array_equal(np.rint(integer_output(even, x)).astype(np.int64), x @ even.weights.q)
    uneven = map_layer(w, bits_per_cell=2, levels=(1e-6, 1.5e-6, 3.5e-6, 4e-6), tile_cols=16)
    assert not np.allclose(integer_output(uneven, x), x @ uneven.weights.q)


def test_conv_layer_lowered_to_matrix_is_exact() -> None:
    rng = np.random.default_rng(4)
    weight = rng.normal(size=(3, 2, 3, 3))
    images = rng.random((2, 2, 6, 5))
    layer = map_layer(conv2d_weight_matrix(weight), tile_rows=8, tile_cols=14,
                      column_order="planes_low_first", row_order="mdm")
    patches = im2col(images, (3, 3), stride=1, padding=1)  # (B, L, 18)
    qi = quantize_inputs(patches.reshape(-1, 18), bits=6, scale=1.0 / 63)
    out = np.rint(integer_output(layer, qi)).astype(np.int64).reshape(2, 6, 5, 3)
    # Independent reference: direct integer convolution with explicit loops.
    img_int = np.rint(images * 63).astype(np.int64)
    padded = np.pad(img_int, ((0, 0), (0, 0), (1, 1), (1, 1)))
    q4 = layer.weights.q.T.reshape(3, 2, 3, 3)
    ref = np.zeros((2, 6, 5, 3), dtype=np.int64)
    for b, o, i, j in itertools.product(range(2), range(3), range(6), range(5)):
        ref[b, i, j, o] = int((padded[b, :, i:i + 3, j:j + 3] * q4[o]).sum())
    assert np.array_equal(out, ref)


# ------------------------------------------------------------------ quantization
def test_quantization_error_bounds_and_channels() -> None:
    w = _weights(16, 6)
    for granularity in ("tensor", "channel"):
        qw = quantize_weights(w, bits=6, granularity=granularity)
        assert np.abs(qw.q).max() <= 31
        assert np.all(np.abs(qw.dequantized - w) <= qw.scale / 2 + 1e-12)
    per_channel = quantize_weights(w, bits=6, granularity="channel")
    assert np.allclose(np.abs(per_channel.q).max(axis=0), 31)
    assert len(set(per_channel.scale.round(12))) == 6


# ------------------------------------------------------------- MDM and layouts
def test_row_permutation_bookkeeping_keeps_ideal_result() -> None:
    w = _weights(30, 7)
    x = np.random.default_rng(5).normal(size=(6, 30))
    outputs = {}
    for name in PRESETS:
        layer = map_layer(w, MappingConfig.preset(name, tile_rows=8, tile_cols=21))
        for tile in layer.tiles:  # each tile's rows is a permutation of its block + padding
            rb = tile.key[1]
            block = set(range(rb * 8, min(30, rb * 8 + 8)))
            assert set(tile.rows[tile.rows >= 0].tolist()) == block
        qi = quantize_inputs(x, 8)
        outputs[name] = np.rint(integer_output(layer, qi)).astype(np.int64)
    for name in PRESETS:
        assert np.array_equal(outputs[name], outputs["naive"]), name


def test_mdm_sort_minimizes_manhattan_distance_brute_force() -> None:
    rng = np.random.default_rng(6)
    w = rng.normal(size=(6, 2)) * np.array([[0.05], [1], [0.2], [3], [0.01], [0.6]])
    activity = rng.random(6)
    layer = map_layer(w, tile_rows=6, tile_cols=14, row_order="mdm",
                      input_activity=activity)
    tile = layer.tiles[0]
    def cost(rows_digits: np.ndarray, rows: np.ndarray) -> float:
        m = rows.size
        # Manhattan distance: column segments to the sense amp = m - position.
        return float(sum(activity[r] * d.sum() * (m - p)
                         for p, (r, d) in enumerate(zip(rows, rows_digits, strict=True))))
    mdm_cost = cost(tile.digits, tile.rows)
    natural = np.argsort(tile.rows)
    for perm in itertools.permutations(range(6)):
        order = natural[list(perm)]
        assert cost(tile.digits[order], tile.rows[order]) >= mdm_cost - 1e-12
    scores = row_scores(tile.digits, tile.rows, activity)
    assert np.all(np.diff(scores) >= 0)  # most active at the bottom (sense amps)


def test_column_orientation() -> None:
    layer = map_layer(_weights(4, 2), tile_rows=4, tile_cols=14,
                      column_order="planes_low_first")
    assert layer.tiles[0].col_slice.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    rev = map_layer(_weights(4, 2), tile_rows=4, tile_cols=14, column_order="planes_high_first")
    assert rev.tiles[0].col_slice.tolist()[:2] == [6, 6]
    naive = map_layer(_weights(4, 2), tile_rows=4, tile_cols=16)
    assert naive.tiles[0].col_output.tolist() == [0] * 7 + [1] * 7 + [-1, -1]
    assert naive.tiles[0].col_slice.tolist()[:7] == [6, 5, 4, 3, 2, 1, 0]


def test_mdm_reduces_nf_on_constructed_case() -> None:
    """Dense low-order planes and a few dense rows: MDM must beat naive, reverse is worst."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(24, 3)) * np.where(rng.random((24, 1)) < 0.25, 1.0, 0.02)
    nf = {}
    for name in ("naive", "mdm", "reverse"):
        layer = map_layer(w, MappingConfig.preset(name, tile_rows=24, tile_cols=21))
        nf[name] = layer_nf(layer, CIRCUIT).layer_nf_allon
    assert nf["mdm"] < 0.9 * nf["naive"]
    assert nf["reverse"] > nf["naive"]


# --------------------------------------------------------------------------- NF
def test_tile_nf_matches_solve_directly() -> None:
    layer = map_layer(_weights(16, 2), tile_rows=16, tile_cols=14, row_order="mdm",
                      column_order="planes_low_first")
    tile = layer.tiles[0]
    assert tile.real_columns.all()
    xbar = Crossbar(tile.conductance, r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0)
    sol = solve(xbar, np.full(16, layer.config.v_read), backend="reference")
    assert tile_nf(layer, tile, CIRCUIT)["nf"] == pytest.approx(sol.nf, rel=1e-9)
    # With inputs: NF under DAC voltages of |x_int|.
    x_int = np.random.default_rng(8).integers(1, 256, size=(3, 16))
    v = np.zeros((3, 16))
    v[:, :] = x_int[:, tile.rows] * layer.config.v_read / 255
    sol_b = solve(xbar, v, backend="reference")
    assert tile_nf(layer, tile, CIRCUIT, x_int)["nf"] == pytest.approx(np.mean(sol_b.nf),
                                                                       rel=1e-9)


def test_padded_columns_are_excluded_from_nf() -> None:
    layer = map_layer(_weights(8, 1), tile_rows=8, tile_cols=10)  # 7 real columns of 10
    tile = layer.tiles[0]
    sol = solve(tile_crossbar(tile, CIRCUIT), np.full(8, 0.2), backend="reference")
    assert tile_nf(layer, tile, CIRCUIT)["nf"] == pytest.approx(np.mean(sol.nf_columns[:7]),
                                                                rel=1e-9)


def test_effective_conductance_reproduces_solve() -> None:
    xbar = Crossbar.random(12, 9, r_row=2.0, r_col=3.0, r_driver=5.0, r_sense=7.0, seed=3)
    g_eff = effective_conductance(xbar)
    v = np.random.default_rng(9).normal(size=(4, 12))
    assert np.allclose(v @ g_eff, solve(xbar, v).column_currents, rtol=1e-10, atol=1e-18)


def test_distorted_output_geff_equals_solve_and_is_distorted() -> None:
    w = _weights(12, 3)
    layer = map_layer(w, tile_rows=8, tile_cols=7, bias=np.arange(3.0))
    x = np.random.default_rng(10).random((4, 12))
    y_geff = layer_output(layer, x, CIRCUIT)
    y_solve = layer_output(layer, x, CIRCUIT, method="solve")
    y_ideal = layer_output(layer, x)
    assert np.allclose(y_geff, y_solve, rtol=1e-9, atol=1e-12)
    assert not np.allclose(y_geff, y_ideal, rtol=1e-4)
    assert np.allclose(y_ideal, x @ w + np.arange(3.0), rtol=0.05, atol=0.05 * np.abs(w).max())
    # Single vector in, single vector out.
    assert np.allclose(layer_output(layer, x[0], CIRCUIT), y_geff[0])


def test_lut_column_unavailable_without_a_table() -> None:
    layer = map_layer(_weights(8, 2), tile_rows=8, tile_cols=14)
    plain = layer_nf(layer, CIRCUIT)
    assert not plain.lut_available and plain.lut_mean_abs_error is None
    assert plain.layer_nf_lut is None
    json.dumps(plain.to_dict(), default=float)


# ------------------------------------------------------------------------ search
def test_search_never_worse_and_improves_a_bad_start() -> None:
    w = _weights(16, 2, seed=11)
    layer = map_layer(w, MappingConfig.preset("reverse", tile_rows=16, tile_cols=14))
    res = search_row_order(layer, 0, CIRCUIT, max_evals=25, seed=0)
    assert res.nf_best <= res.nf_start
    assert res.nf_best < res.nf_start  # the reverse order is easy to improve
    assert all(a >= b for a, b in itertools.pairwise(res.history))
    # Exact check of the reported value, and the ideal result is unchanged.
    improved = layer.with_tile(0, res.tile)
    assert tile_nf(improved, 0, CIRCUIT)["nf"] == pytest.approx(res.nf_best, rel=1e-9)
    x = np.random.default_rng(12).integers(0, 256, size=(2, 16))
    assert np.array_equal(np.rint(integer_output(improved, x)), np.rint(integer_output(layer, x)))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, match", [
    ({"bits_per_cell": 5}, "bits_per_cell"),
    ({"weight_bits": 1}, "weight_bits"),
    ({"levels": (1e-6, 5e-7)}, "levels"),
    ({"bits_per_cell": 2, "levels": (1e-6, 2e-6, 2e-6, 3e-6)}, "strictly increasing"),
    ({"g_on": 1e-7, "g_off": 1e-6}, "g_off < g_on"),
    ({"tile_cols": 3}, "cannot hold"),
    ({"row_order": "best"}, "row_order"),
    ({"input_mode": "pwm"}, "input_mode"),
])
def test_bad_config_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(MappingError, match=match):
        MappingConfig(**kwargs)


def test_bad_inputs_raise() -> None:
    with pytest.raises(MappingError, match="NaN"):
        map_layer(np.array([[1.0, np.nan]]))
    with pytest.raises(MappingError, match="2-D"):
        map_layer(np.ones(4))
    with pytest.raises(MappingError, match="unknown mapping"):
        MappingConfig.preset("fancy")
    layer = map_layer(_weights(6, 2), tile_rows=8, tile_cols=7)
    with pytest.raises(MappingError, match="shape"):
        integer_output(layer, np.ones((2, 5), dtype=int))
    with pytest.raises(MappingError, match="exceed"):
        integer_output(layer, np.full((1, 6), 256))
    with pytest.raises(MappingError, match="NaN"):
        layer_output(layer, np.full(6, np.nan))
    with pytest.raises(MappingError, match="input_activity"):
        map_layer(_weights(6, 2), input_activity=-np.ones(6))


# -------------------------------------------------------------- files and extras
def test_load_weights_npy_and_safetensors(tmp_path) -> None:
    w = _weights(5, 3)
    np.save(tmp_path / "w.npy", w)
    assert np.array_equal(load_weights(tmp_path / "w.npy")["w"], w)
    with pytest.raises(MappingError, match="unsupported"):
        load_weights(tmp_path / "w.txt")
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"lin.weight": w.T.astype(np.float32).copy(), "bias": np.zeros(3, np.float32)},
                 str(tmp_path / "m.safetensors"))
    loaded = load_weights(tmp_path / "m.safetensors", transpose=True)
    assert list(loaded) == ["lin.weight"]
    assert np.allclose(loaded["lin.weight"], w, atol=1e-6)


def test_torch_wrapper_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    from xbar_circuit.mapping import as_torch_module

    layer = map_layer(_weights(10, 4), tile_rows=8, tile_cols=14)
    module = as_torch_module(layer, CIRCUIT)
    x = torch.rand(2, 3, 10)
    out = module(x)
    assert out.shape == (2, 3, 4)
    ref = layer_output(layer, x.reshape(-1, 10).double().numpy(), CIRCUIT)
    assert np.allclose(out.reshape(-1, 4).numpy(), ref, rtol=1e-5, atol=1e-6)


def test_map_command(tmp_path) -> None:
    from click.testing import CliRunner

    from xbar_circuit.mapping.cli import map_command

    np.save(tmp_path / "w.npy", _weights(16, 3))
    config = {"mapping": {"tile_rows": 8, "tile_cols": 14}, "circuit": {"r_row": 2.5,
                                                                      "r_col": 2.5}}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    result = CliRunner().invoke(map_command, [
        str(tmp_path / "w.npy"), "--config", str(tmp_path / "cfg.json"), "--search-evals", "4",
        "--search-tiles", "1", "--serial", "--objective", "bw_error_allon",
        "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    entry = report["layers"]["w"]
    assert entry["mdm"]["layer_nf_allon"] < entry["naive"]["layer_nf_allon"]
    start, best = entry["search"]["tile_objective_start"], entry["search"]["tile_objective_best"]
    assert best[0] <= start[0]
    assert (tmp_path / "out" / "map_nf_w.png").exists()
    assert "metric: BW = bit-weighted" in result.output and "column NF (secondary)" in result.output
    assert "orientation: w: (16, 3) kept as (K, O)" in result.output
    bad = CliRunner().invoke(map_command, [str(tmp_path / "w.npy"), "--bits-per-cell", "9",
                                           "--out-dir", str(tmp_path / "o2")])
    assert bad.exit_code != 0 and "bits_per_cell" in bad.output


@pytest.mark.parametrize("name", ["xbar_circuit.mapping.quantize", "xbar_circuit.mapping.layout",
                                  "xbar_circuit.mapping.readout"])
def test_mapping_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_import_mapping_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, xbar_circuit.mapping\n"
            "print(any(m.split('.')[0] in ('torch', 'safetensors', 'matplotlib', 'sklearn')"
            " for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------ review findings
def test_layer_nf_rejects_inputs_of_the_wrong_width() -> None:
    layer = map_layer(_weights(20, 3), tile_rows=8, tile_cols=14)
    rng = np.random.default_rng(4)
    for shape in ((2, 21), (2, 3), (19,)):
        with pytest.raises(MappingError, match=r"layer has K=20 rows"):
            layer_nf(layer, CIRCUIT, rng.random(shape))
    assert layer_nf(layer, CIRCUIT, rng.random((2, 20))).layer_nf_inputs is not None
    with pytest.raises(MappingError, match=r"shape \(B, 20\)"):
        tile_nf(layer, 0, CIRCUIT, np.ones((2, 21), dtype=np.int64))


def test_tile_nf_rejects_bad_tile_indices() -> None:
    layer = map_layer(_weights(20, 3), tile_rows=8, tile_cols=14)
    n = len(layer.tiles)
    for index in (-1, n, n + 5, np.int64(-2)):
        with pytest.raises(MappingError, match=rf"tile index -?\d+ is out of range.* {n} tile"):
            tile_nf(layer, index, CIRCUIT)
        with pytest.raises(MappingError, match="out of range"):
            search_row_order(layer, index, CIRCUIT, max_evals=2)
    with pytest.raises(MappingError, match="tile must be a Tile or an integer index"):
        tile_nf(layer, "0", CIRCUIT)
    assert np.isfinite(tile_nf(layer, n - 1, CIRCUIT)["nf"])


def _invoke_map(args: list[str]):
    from click.testing import CliRunner

    from xbar_circuit.mapping.cli import map_command

    return CliRunner().invoke(map_command, [*args, "--no-plots"])


def test_map_command_rejects_inputs_of_the_wrong_width(tmp_path) -> None:
    np.save(tmp_path / "w.npy", _weights(20, 3))
    np.save(tmp_path / "x_bad.npy", np.random.default_rng(1).random((2, 21)))
    np.save(tmp_path / "x_ok.npy", np.random.default_rng(1).random((2, 20)))
    res = _invoke_map([str(tmp_path / "w.npy"), "--inputs", str(tmp_path / "x_bad.npy"),
                       "--tile", "8x14", "--out-dir", str(tmp_path / "out")])
    assert res.exit_code != 0
    assert "inputs have 21 features" in res.output and "'w' has K=20 rows" in res.output
    assert not (tmp_path / "out" / "report.json").exists()
    res = _invoke_map([str(tmp_path / "w.npy"), "--inputs", str(tmp_path / "x_ok.npy"),
                       "--tile", "8x14", "--out-dir", str(tmp_path / "ok")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["layers"]["w"]["mdm"]["layer_nf_inputs"] is not None


def test_map_command_rejects_unreadable_or_non_numeric_files(tmp_path) -> None:
    w = tmp_path / "w.npy"
    np.save(w, _weights(8, 2))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "text.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "numtext.npy", np.array([["1", "2"], ["3", "4"]]))
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for name in ("obj.npy", "text.npy", "numtext.npy", "corrupt.npy", "bad.npz"):
        with pytest.raises(MappingError, match=name):
            load_weights(tmp_path / name)
        res = _invoke_map([str(tmp_path / name), "--out-dir", str(tmp_path / "o")])
        assert res.exit_code != 0 and name in res.output, (name, res.output)
        assert isinstance(res.exception, SystemExit), res.exception  # a clean ClickException
        if name.endswith(".npy"):
            res = _invoke_map([str(w), "--inputs", str(tmp_path / name), "--out-dir",
                               str(tmp_path / "o")])
            assert res.exit_code != 0 and f"inputs file {tmp_path / name}" in res.output, \
                res.output


def test_map_command_rejects_negative_search_options(tmp_path) -> None:
    from xbar_circuit.mapping.cli import run_map

    np.save(tmp_path / "w.npy", _weights(8, 2))
    for option, value in (("--search-tiles", "-1"), ("--search-evals", "-3")):
        res = _invoke_map([str(tmp_path / "w.npy"), option, value,
                           "--out-dir", str(tmp_path / "o")])
        assert res.exit_code != 0 and option in res.output, res.output
    weights = {"w": _weights(8, 2)}
    config = MappingConfig(tile_rows=8, tile_cols=14)
    with pytest.raises(MappingError, match="search_evals must be an integer >= 0"):
        run_map(weights, config, CIRCUIT, ["mdm"], search_evals=-3)
    with pytest.raises(MappingError, match="search_tiles must be an integer >= 0"):
        run_map(weights, config, CIRCUIT, ["mdm"], search_evals=2, search_tiles=-1)


def test_map_compensate_programs_every_layout_and_reports_it(tmp_path) -> None:
    """``xbar map --compensate``: each layout gains a compensated twin whose bit-weighted
    error is a small fraction of the uncompensated one, with the compensation summary."""
    rng = np.random.default_rng(11)
    np.save(tmp_path / "w.npy", rng.normal(size=(40, 12)))
    res = _invoke_map([str(tmp_path / "w.npy"), "--tile", "20x24", "--layouts", "naive,mdm",
                       "--r-row", "2", "--r-col", "2", "--compensate", "--g-prog-max", "3e-4",
                       "--json", "--no-plots", "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    entry = report["layers"]["w"]
    for layout in ("naive", "mdm"):
        before = abs(entry[layout]["bw_error_allon"])
        after = abs(entry[f"{layout}+compensation"]["bw_error_allon"])
        assert before > 1e-3
        assert after <= 0.1 * before, (layout, before, after)
        summary = entry[f"{layout}+compensation"]["compensation"]
        assert summary["tiles"] == len(entry[layout]["tiles"])
        assert summary["error_after"] < summary["error_before"]
    assert report["compensation"] == {"g_max": 3e-4, "x_cal": False}
    bad = _invoke_map([str(tmp_path / "w.npy"), "--compensate", "--g-prog-max", "-1",
                       "--out-dir", str(tmp_path / "o")])
    assert bad.exit_code != 0 and "--g-prog-max must be" in bad.output
    ignored = _invoke_map([str(tmp_path / "w.npy"), "--g-prog-max", "3e-4", "--no-plots",
                           "--out-dir", str(tmp_path / "o")])     # without --compensate
    assert ignored.exit_code == 2 and "needs --compensate" in ignored.output
    low = _invoke_map([str(tmp_path / "w.npy"), "--compensate", "--g-prog-max", "5e-5",
                       "--no-plots", "--out-dir", str(tmp_path / "o")])   # below g_on
    assert low.exit_code == 1 and "below the mapping's top level 100.0 µS" in low.output
    assert "naive" not in low.output                    # refused before any evaluation
    default = _invoke_map([str(tmp_path / "w.npy"), "--tile", "20x24", "--layouts", "naive",
                           "--compensate", "--json", "--no-plots", "--out-dir",
                           str(tmp_path / "o")])
    assert json.loads(default.stdout)["compensation"]["g_max"] == 2e-4   # 2 x g_on, not null
