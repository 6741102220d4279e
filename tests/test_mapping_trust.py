"""Weight mappings: output-referred metrics, LUT query, orientation, layouts, periphery,
Crossbar-template circuits, search and torch layers, each against an independent reference."""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import pytest

from xbar_circuit import Crossbar, Sinh, solve
from xbar_circuit.mapping import (
    CircuitParams,
    LUTRangeWarning,
    MappingCircuit,
    MappingConfig,
    MappingError,
    OrientationError,
    Periphery,
    adc_quantize,
    calibrate_layer,
    effective_weights,
    fit_column_gain,
    integer_output,
    layer_nf,
    layer_output,
    load_weights,
    map_layer,
    output_error,
    quantize_inputs,
    search_layer,
    search_tile,
    tile_crossbar,
    tile_nf,
    tile_objective,
)

CIRCUIT = CircuitParams(r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0)


def _weights(k: int = 20, o: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(k, o)) * np.exp(rng.normal(size=(k, 1)))


# ------------------------------------------------------------ output-referred metrics
def _bw_brute(layer, tiles_currents) -> float:
    """Bit-weighted error by explicit loops over arrays, outputs and slices."""
    cfg = layer.config
    b = cfg.bits_per_cell
    num: dict[tuple[int, int], float] = {}
    den: dict[tuple[int, int], float] = {}
    for tile, (ideal, actual) in zip(layer.tiles, tiles_currents, strict=False):
        for c in range(tile.shape[1]):
            o = int(tile.col_output[c])
            if o < 0:
                continue
            w = 2.0 ** (b * int(tile.col_slice[c]))
            key = (tile.key[0], o)
            num[key] = num.get(key, 0.0) + w * (ideal[c] - actual[c])
            den[key] = den.get(key, 0.0) + w * ideal[c]
    return float(np.mean([num[k] / den[k] for k in den if den[k] > 0]))


def test_bit_weighted_error_matches_brute_force_through_solve() -> None:
    w = _weights(24, 3, seed=4)
    layer = map_layer(w, MappingConfig.preset("mdm", tile_rows=16, tile_cols=14))
    assert len({t.key[1] for t in layer.tiles}) == 2  # two row blocks are summed per output
    currents = []
    for tile in layer.tiles:
        v = np.where(tile.rows >= 0, layer.config.v_read, 0.0)
        xbar = Crossbar(tile.conductance, r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0)
        currents.append((v @ tile.conductance, solve(xbar, v).column_currents))
    report = layer_nf(layer, CIRCUIT)
    assert report.bw_error_allon == pytest.approx(_bw_brute(layer, currents), rel=1e-7)
    # The per-tile value is the same formula within one tile.
    t0 = tile_nf(layer, 0, CIRCUIT)
    assert t0["bw_error"] == pytest.approx(_bw_brute(layer, currents[:1]), rel=1e-7)
    assert 0 < report.bw_error_allon < 1
    assert "bit-weighted" in report.to_dict()["metrics"]["bw_error"]


def test_output_error_matches_solve_based_outputs() -> None:
    w = _weights(20, 4, seed=5)
    layer = map_layer(w, MappingConfig.preset("planes_high_first", tile_rows=16, tile_cols=14))
    x = np.random.default_rng(6).uniform(-1, 1, size=(5, 20))
    y_ideal = layer_output(layer, x)
    y_solve = layer_output(layer, x, CIRCUIT, method="solve")
    expected = np.linalg.norm(y_solve - y_ideal) / np.linalg.norm(y_ideal)
    assert output_error(layer, x, CIRCUIT) == pytest.approx(expected, rel=1e-6)
    assert layer_nf(layer, CIRCUIT, x).output_error == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------ lookup table query
@pytest.fixture(scope="module")
def small_tables():
    from xbar_circuit.tables import LookupTable, Sweep, calibrate

    folder = tempfile.mkdtemp()
    tables = {}
    for size in (64, 128, 256):
        sweep = Sweep.from_dict({"grid": {
            "rows": [size], "cols": [size], "r_row": [1.0], "r_col": [1.0], "r_driver": [1.0],
            "r_sense": [1.0], "g_on": 1e-4, "g_off": 1e-6, "density": [0.15]},
            "samples": 1, "seed": 3, "inputs": {"pattern": "ones", "v_read": 0.2},
            "map_max": 8})
        path = os.path.join(folder, f"t{size}.nc")
        calibrate(sweep, path, workers=0, progress=False, ngspice_check=False)
        tables[size] = LookupTable.load(path)
    return tables


@pytest.mark.parametrize("size,k,o", [(64, 40, 7), (128, 90, 14), (256, 200, 28)])
def test_lut_layer_nf_on_padded_tiles_within_0_005(small_tables, size, k, o) -> None:
    """One padded tile per size: padded rows at 0 V, padded columns out of the mean."""
    circuit = CircuitParams(1.0, 1.0, 1.0, 1.0)
    rng = np.random.default_rng(size)
    layer = map_layer(rng.normal(size=(k, o)), MappingConfig.preset(
        "mdm", tile_rows=size, tile_cols=size, sign="offset"))
    assert len(layer.tiles) == 1
    tile = layer.tiles[0]
    assert (tile.rows < 0).any() and (~tile.real_columns).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LUTRangeWarning)
        report = layer_nf(layer, circuit, lut=small_tables[size])
    assert report.lut_available
    assert abs(report.layer_nf_lut - report.layer_nf_allon) <= 0.005
    # The old query (every row driven, every column averaged) is far off at 256.
    if size == 256:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            naive = small_tables[size].predict_nf(tile_crossbar(tile, circuit))
        assert abs(naive - report.layer_nf_allon) > 0.01


def test_out_of_table_tiles_give_one_summary_warning(small_tables) -> None:
    w = np.random.default_rng(1).normal(size=(120, 8))
    layer = map_layer(w, MappingConfig.preset("naive", tile_rows=64, tile_cols=64))
    assert len(layer.tiles) >= 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer_nf(layer, CircuitParams(3.0, 3.0, 1.0, 1.0), lut=small_tables[64])
    ours = [c for c in caught if issubclass(c.category, LUTRangeWarning)]
    others = [c for c in caught if "outside the table" in str(c.message)]
    assert len(ours) == 1 and not others, [str(c.message) for c in caught]
    assert "r_row" in str(ours[0].message) and f"of {len(layer.tiles)} tiles" in str(
        ours[0].message)


# -------------------------------------------------------------------- orientation
def test_pytorch_named_tensors_are_transposed_and_ambiguous_ones_refused(tmp_path) -> None:
    st = pytest.importorskip("safetensors.numpy")
    lin = np.random.default_rng(0).normal(size=(20, 100)).astype(np.float32)  # Linear(100, 20)
    conv = np.random.default_rng(1).normal(size=(4, 3, 2, 2)).astype(np.float32)
    st.save_file({"fc.weight": lin, "conv.weight": conv, "fc.bias": np.zeros(20, np.float32)},
                 str(tmp_path / "m.safetensors"))
    notes: list[str] = []
    got = load_weights(tmp_path / "m.safetensors", notes=notes)
    assert got["fc.weight"].shape == (100, 20)
    assert np.allclose(got["fc.weight"], lin.T)
    assert got["conv.weight"].shape == (12, 4)
    assert any("fc.weight: (20, 100) transposed to (100, 20)" in n for n in notes)
    assert any("lowered" in n for n in notes)
    np.savez(tmp_path / "a.npz", w1=lin)
    with pytest.raises(OrientationError, match="w1"):
        load_weights(tmp_path / "a.npz")
    assert load_weights(tmp_path / "a.npz", transpose=False)["w1"].shape == (20, 100)
    assert load_weights(tmp_path / "a.npz", transpose=True)["w1"].shape == (100, 20)
    from click.testing import CliRunner

    from xbar_circuit.mapping.cli import map_command

    res = CliRunner().invoke(map_command, [str(tmp_path / "a.npz"), "--no-plots", "--out-dir",
                                           str(tmp_path / "o")])
    assert res.exit_code != 0 and "--no-transpose" in res.output
    res = CliRunner().invoke(map_command, [str(tmp_path / "m.safetensors"), "--tensor",
                                           "fc.weight", "--tile", "32x32", "--no-plots",
                                           "--layouts", "naive", "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "orientation: fc.weight: (20, 100) transposed to (100, 20)" in res.output
    assert "| fc.weight | 100x20 |" in res.output


# ------------------------------------------------------------------------ layouts
def test_baseline_and_column_permutations_keep_the_ideal_result() -> None:
    w = _weights(20, 5)
    x = np.random.default_rng(2).integers(-255, 256, size=(3, 20))
    base = map_layer(w, MappingConfig.preset("planes_high_first", tile_rows=8, tile_cols=16))
    tile = base.tiles[0]
    real = tile.col_slice[tile.real_columns]
    assert real[0] == real.max() and np.all(np.diff(real) <= 0)  # MSB plane at the drivers
    assert np.array_equal(tile.rows[tile.rows >= 0], np.sort(tile.rows[tile.rows >= 0]))
    rng = np.random.default_rng(3)
    layer = base
    for index in range(len(layer.tiles)):
        perm = rng.permutation(layer.tiles[index].shape[1])
        layer = layer.with_tile(index, layer.tiles[index].with_column_order(perm))
    assert np.array_equal(np.rint(integer_output(layer, x)).astype(np.int64),
                          x @ layer.weights.q)


# ------------------------------------------------------------------------ periphery
def test_adc_quantizer_and_gain_fit_closed_forms() -> None:
    rng = np.random.default_rng(0)
    current = rng.uniform(-1, 3, size=(50, 4))
    lo, hi = np.zeros(4), np.array([1.0, 2.0, 3.0, 0.0])
    q = adc_quantize(current, lo, hi, 3)
    for j in range(3):  # brute force: nearest of the 8 levels after clipping
        levels = np.linspace(lo[j], hi[j], 8)
        ref = levels[np.argmin(np.abs(np.clip(current[:, j], lo[j], hi[j])[:, None] - levels),
                               axis=1)]
        assert np.allclose(q[:, j], ref)
    assert np.all(q[:, 3] == 0.0)
    measured = rng.normal(size=(30, 3))
    gain, offset = fit_column_gain(measured, 2.0 * measured + 3.0, with_offset=True)
    assert np.allclose(gain, 2.0) and np.allclose(offset, 3.0)


def test_reference_column_is_exact_on_the_ideal_circuit_and_needs_its_column() -> None:
    w = _weights()
    x = np.random.default_rng(1).integers(0, 256, size=(3, 20))
    layer = map_layer(w, MappingConfig.preset("mdm", tile_rows=8, tile_cols=15,
                                              reference_column=True))
    assert all(t.reference_columns[-1] for t in layer.tiles)
    y = integer_output(layer, x, periphery=Periphery(offset="reference"))
    assert np.array_equal(np.rint(y).astype(np.int64), x @ layer.weights.q)
    with pytest.raises(MappingError, match="reference_column=True"):
        integer_output(map_layer(w, tile_rows=8, tile_cols=14), x,
                       periphery=Periphery(offset="reference"))
    with pytest.raises(MappingError, match="needs calibration"):
        integer_output(layer, x, CIRCUIT, periphery=Periphery(adc_bits=6))
    with pytest.raises(MappingError, match="adc_bits"):
        Periphery(adc_bits=0)


def test_calibration_reduces_output_error_and_fine_adc_matches_no_adc() -> None:
    w = _weights(40, 6, seed=8)
    layer = map_layer(w, MappingConfig.preset("naive", tile_rows=32, tile_cols=32))
    rng = np.random.default_rng(9)
    x_cal, x_test = rng.uniform(0, 1, (64, 40)), rng.uniform(0, 1, (32, 40))
    raw = output_error(layer, x_test, CIRCUIT)
    cal = calibrate_layer(layer, x_cal, CIRCUIT, Periphery(calibration="gain_offset"))
    calibrated = output_error(layer, x_test, CIRCUIT, calibration=cal)
    assert calibrated < 0.5 * raw
    # Within the calibration range a 16-bit ADC reads the exact currents.
    fine = calibrate_layer(layer, x_cal, CIRCUIT, Periphery(adc_bits=16))
    y_fine = layer_output(layer, x_cal, CIRCUIT, calibration=fine)
    y_exact = layer_output(layer, x_cal, CIRCUIT)
    assert np.abs(y_fine - y_exact).max() < 1e-3 * np.abs(y_exact).max()
    coarse = calibrate_layer(layer, x_cal, CIRCUIT, Periphery(adc_bits=3))
    assert output_error(layer, x_test, CIRCUIT, calibration=coarse) > raw
    with pytest.raises(MappingError, match="different circuit"):
        layer_output(layer, x_test, CircuitParams(1.0, 1.0), calibration=cal)


# ------------------------------------------------------------- circuit templates
def test_template_equals_shorthand_and_nonlinear_cells_are_solved() -> None:
    w = _weights(12, 2, seed=3)
    layer = map_layer(w, MappingConfig.preset("mdm", tile_rows=12, tile_cols=14))
    x = np.random.default_rng(4).uniform(0, 1, (3, 12))
    template = Crossbar(np.zeros((1, 1)), r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0)
    assert np.allclose(layer_output(layer, x, template), layer_output(layer, x, CIRCUIT),
                       rtol=1e-9, atol=0)
    sinh = MappingCircuit(template.replace(device=Sinh(k=8.0)))
    y = integer_output(layer, quantize_inputs(x, 8), sinh)
    # Independent: solve each tile's crossbar at the DAC voltages and recombine by hand.
    qi = quantize_inputs(x, 8)
    v_unit = layer.config.v_read / 255
    ref = np.zeros_like(y)
    for tile in layer.tiles:
        xbar = Crossbar(tile.conductance, r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0,
                        device=Sinh(k=8.0))
        v = np.zeros((3, tile.shape[0]))
        v[:, tile.rows >= 0] = qi.q[:, tile.rows[tile.rows >= 0]] * v_unit
        sums = (solve(xbar, v).column_currents - layer.config.g_off * v.sum(1, keepdims=True)) \
            / (layer.config.g_step * v_unit)
        for c in np.flatnonzero(tile.real_columns):
            ref[:, tile.col_output[c]] += tile.polarity * 2.0 ** tile.col_slice[c] * sums[:, c]
    assert np.allclose(y, ref, rtol=1e-6)
    assert not np.allclose(y, integer_output(layer, qi, CIRCUIT), rtol=1e-3)
    with pytest.raises(MappingError, match="nonlinear"):
        effective_weights(layer, sinh)


def test_variability_and_faults_are_per_tile_and_reproducible() -> None:
    layer = map_layer(_weights(16, 4), MappingConfig.preset("naive", tile_rows=8, tile_cols=14))
    circ = MappingCircuit(CIRCUIT.crossbar(np.zeros((1, 1))), sigma=0.2, p_stuck_on=0.05,
                          seed=7)
    a = [tile_crossbar(t, circ, layer).conductance for t in layer.tiles]
    b = [tile_crossbar(t, circ, layer).conductance for t in layer.tiles]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    ratio0 = a[0] / layer.tiles[0].conductance
    ratio1 = a[1] / layer.tiles[1].conductance
    assert not np.allclose(ratio0, ratio1)
    assert np.isclose(a[0], layer.config.g_on).mean() > (layer.tiles[0].digits > 0).mean() - 0.2
    assert layer_nf(layer, circ).bw_error_allon != layer_nf(layer, CIRCUIT).bw_error_allon
    with pytest.raises(MappingError, match="sigma"):
        MappingCircuit(CIRCUIT.crossbar(np.zeros((1, 1))), sigma=-1.0)


def test_effective_weights_reproduce_layer_output() -> None:
    w = _weights(20, 4, seed=2)
    layer = map_layer(w, MappingConfig.preset("mdm", tile_rows=8, tile_cols=14, sign="offset"),
                      bias=np.arange(4.0))
    x = np.random.default_rng(3).uniform(-1, 1, (6, 20))
    qi = quantize_inputs(x, 8)
    x_q = qi.q * qi.scale[:, None]
    w_eff = effective_weights(layer, CIRCUIT)
    assert np.allclose(layer_output(layer, x, CIRCUIT, method="solve"),
                       x_q @ w_eff + np.arange(4.0), rtol=1e-8, atol=1e-10)
    assert np.allclose(effective_weights(layer), layer.weights.dequantized, atol=1e-12)


# ------------------------------------------------------------------------- search
def test_search_objective_is_exact_and_never_worse_with_column_moves() -> None:
    w = _weights(16, 2, seed=11)
    layer = map_layer(w, MappingConfig.preset("mdm", tile_rows=16, tile_cols=16))
    x = np.random.default_rng(0).uniform(0, 1, (12, 16))
    x_int = quantize_inputs(x, 8).q
    res = search_tile(layer, 0, CIRCUIT, x_int=x_int, max_evals=20, seed=1)
    assert res.best <= res.start and res.evaluations <= 20
    assert res.best == pytest.approx(tile_objective(layer, res.tile, CIRCUIT, "bw_error_cal",
                                                    x_int), rel=1e-9)
    moved = layer.with_tile(0, res.tile)
    xi = np.random.default_rng(5).integers(-255, 256, (3, 16))
    assert np.array_equal(np.rint(integer_output(moved, xi)).astype(np.int64),
                          xi @ layer.weights.q)
    # Independent value of the calibrated objective: fit by np.linalg.lstsq per column.
    tile = layer.tiles[0]
    v = np.zeros((12, 16))
    v[:, tile.rows >= 0] = x_int[:, tile.rows[tile.rows >= 0]] * (0.2 / 255)
    xbar = Crossbar(tile.conductance, r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=10.0)
    read = (solve(xbar, v).column_currents - layer.config.g_off * v.sum(1, keepdims=True)) \
        / (layer.config.g_step * 0.2 / 255)
    ideal = (v / (0.2 / 255)) @ tile.digits
    err = np.zeros((12, 2))
    ref = np.zeros((12, 2))
    for c in np.flatnonzero(tile.real_columns):
        a = np.column_stack([read[:, c], np.ones(12)])
        coef = np.linalg.lstsq(a, ideal[:, c], rcond=None)[0] if read[:, c].std() > 0 \
            else np.array([1.0, 0.0])
        weight = 2.0 ** tile.col_slice[c]
        err[:, tile.col_output[c]] += weight * (ideal[:, c] - a @ coef)
        ref[:, tile.col_output[c]] += weight * ideal[:, c]
    expected = np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(ref**2))
    assert res.start == pytest.approx(expected, rel=1e-6)


@pytest.mark.timeout(300)
def test_search_layer_on_dask_equals_serial() -> None:
    layer = map_layer(_weights(16, 4, seed=2),
                      MappingConfig.preset("mdm", tile_rows=8, tile_cols=14))
    kwargs = {"tiles": [0, 1], "objective": "bw_error_allon", "max_evals": 6, "seed": 3}
    serial, res_s = search_layer(layer, CIRCUIT, workers=0, **kwargs)
    parallel, res_p = search_layer(layer, CIRCUIT, workers=2, **kwargs)
    assert [r.best for r in res_s] == pytest.approx([r.best for r in res_p], rel=1e-12)
    assert all(np.array_equal(a.rows, b.rows) and np.array_equal(a.col_output, b.col_output)
               for a, b in zip(serial.tiles, parallel.tiles, strict=True))
    with pytest.raises(MappingError, match="workers"):
        search_layer(layer, CIRCUIT, workers=-1)
    with pytest.raises(MappingError, match="objective"):
        search_tile(layer, 0, CIRCUIT, objective="accuracy")


# -------------------------------------------------------------------------- torch
def _fd_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def test_torch_analog_layers_gradients_match_finite_differences() -> None:
    torch = pytest.importorskip("torch", reason="torch is optional (pip install torch)")
    from xbar_circuit.mapping import convert_to_analog

    torch.set_num_threads(1)  # tiny layers: threads only add contention
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1, stride=2),
                                torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(27, 4)).double()
    cfg = MappingConfig.preset("mdm", tile_rows=16, tile_cols=28)
    analog = convert_to_analog(model, cfg, CIRCUIT, forward="geff")
    assert type(analog[0]).__name__ == "AnalogConv2d" and type(analog[3]).__name__ == \
        "AnalogLinear"
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64)

    def loss_np(xn: np.ndarray) -> float:
        with torch.no_grad():
            return float((analog(torch.from_numpy(xn)) ** 2).sum())

    xr = x.clone().requires_grad_(True)
    (analog(xr) ** 2).sum().backward()
    fd = _fd_grad(loss_np, x.numpy())
    assert np.abs(xr.grad.numpy() - fd).max() <= 1e-6 * np.abs(fd).max()
    # Weight gradient is straight-through: x^T dL/dy of the last layer.
    lin = analog[3]
    lin.weight.grad = None
    h_in = torch.rand(5, 27, dtype=torch.float64)
    out = lin(h_in)
    out.sum().backward()
    assert torch.allclose(lin.weight.grad, torch.ones(5, 4, dtype=torch.float64).t() @ h_in)
    # The geff forward is the circuit: equals the NumPy layer output through exact solves
    # up to the input quantization.
    mapped = lin.mapped
    y_np = layer_output(mapped, h_in.numpy(), CIRCUIT, method="solve") + lin.bias.detach().numpy()
    assert np.abs(out.detach().numpy() - y_np).max() < 0.02 * np.abs(y_np).max()


def test_torch_circuit_forward_with_calibrated_periphery() -> None:
    torch = pytest.importorskip("torch", reason="torch is optional (pip install torch)")
    from xbar_circuit.mapping import calibrate_model, convert_to_analog

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.ReLU(),
                                torch.nn.Linear(6, 3)).double()
    cfg = MappingConfig.preset("naive", tile_rows=8, tile_cols=14)
    analog = convert_to_analog(model, cfg, CIRCUIT,
                               periphery=Periphery(adc_bits=8, calibration="gain_offset"))
    x = torch.rand(4, 12, dtype=torch.float64)
    with pytest.raises(MappingError, match="calibrate_model"):
        analog(x)
    assert calibrate_model(analog, torch.rand(64, 12, dtype=torch.float64)) == 2
    y = analog(x)
    with torch.no_grad():  # independent NumPy pipeline, layer by layer
        h = np.maximum(layer_output(analog[0].mapped, x.numpy(), CIRCUIT,
                                    calibration=analog[0].calibration)
                       + model[0].bias.numpy(), 0)
        ref = layer_output(analog[2].mapped, h, CIRCUIT, calibration=analog[2].calibration) \
            + model[2].bias.numpy()
    assert np.allclose(y.detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    y.sum().backward()  # gradients flow through the circuit forward (exact G_eff Jacobian)
    assert analog[0].weight.grad is not None
