"""aihwkit's IR-drop model: the NumPy re-implementation, its fit to the exact circuit, export.

The model is checked against closed forms (no IR drop, a hand-computed 2x1 case, the
first-order bit-line drop of docs/convention.md) and, where aihwkit is installed,
against aihwkit's own C++ forward; the fit against the exact circuit on a few array
configurations.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from xbar_circuit import Crossbar, effective_conductance
from xbar_circuit.aihwkit_calibration import (
    AIHWKIT_DEFAULT_G_RATIO,
    AihwkitCalibration,
    aihwkit_ir_drop_forward,
    aihwkit_tile_forward,
    exact_tile_output,
    export_aihwkit_config,
    fit_aihwkit_ir_drop,
    load_inference_rpu_config,
    physical_g_ratio,
    to_inference_rpu_config,
)
from xbar_circuit.errors import InputError, MissingDependencyError, SpecError


def _aihwkit_usable() -> str | None:
    """None when aihwkit's C++ tiles run here, else the reason they do not."""
    if importlib.util.find_spec("aihwkit") is None:
        return "aihwkit is not installed (pip install 'xbar-circuit[aihwkit]')"
    try:
        import torch
        from aihwkit.nn import AnalogLinear
        from aihwkit.simulator.configs import InferenceRPUConfig

        layer = AnalogLinear(2, 1, bias=False, rpu_config=InferenceRPUConfig())
        layer(torch.ones(1, 2))
    except Exception as exc:  # a wheel built for another torch fails here
        return f"aihwkit is installed but its tiles do not run with this torch ({exc})"
    return None


AIHWKIT_REASON = _aihwkit_usable()
needs_aihwkit = pytest.mark.skipif(AIHWKIT_REASON is not None, reason=str(AIHWKIT_REASON))


# ----------------------------------------------------------------------- closed forms
def test_zero_ir_drop_is_the_ideal_product():
    rng = np.random.default_rng(0)
    w, x = rng.uniform(-1, 1, (12, 5)), rng.uniform(-1, 1, (3, 12))
    assert np.array_equal(aihwkit_ir_drop_forward(w, x, ir_drop=0.0), x @ w)
    # and the exact circuit without wires is the ideal product too
    y = exact_tile_output(w, x, r_row=0.0, r_col=0.0, g_max=1e-4, g_off=1e-6)
    np.testing.assert_allclose(y, x @ w, rtol=1e-9, atol=1e-12)


def test_hand_computed_two_by_one():
    # n = 2, ratio 10: a = 2/10 (0.5*1 + 1*0.5) = 0.2; c = 0.2 (0.2 (0.01 - 0.2) + 0.5)
    # = 0.0924; x' = [1 (1 - 1), 0.5 (1 - 0.25)] = [0, 0.375]; sum w x' = 0.375;
    # y = 1 - 2 * 0.0924 * 0.375 = 0.9307.
    y = aihwkit_ir_drop_forward([[0.5], [1.0]], [1.0, 0.5], ir_drop=2.0, ir_drop_g_ratio=10.0)
    assert y.shape == (1, 1)
    assert y[0, 0] == pytest.approx(0.9307, abs=1e-12)


def test_drop_is_linear_in_ir_drop_and_signed_inputs_are_odd():
    rng = np.random.default_rng(1)
    w, x = rng.uniform(-1, 1, (16, 4)), rng.uniform(-1, 1, (5, 16))
    ideal = x @ w
    d1 = aihwkit_ir_drop_forward(w, x, ir_drop=1.0, ir_drop_g_ratio=50.0) - ideal
    d3 = aihwkit_ir_drop_forward(w, x, ir_drop=3.0, ir_drop_g_ratio=50.0) - ideal
    np.testing.assert_allclose(d3, 3 * d1, rtol=1e-12)
    neg = aihwkit_ir_drop_forward(w, -x, ir_drop=1.0, ir_drop_g_ratio=50.0)
    np.testing.assert_allclose(neg, -(ideal + d1), rtol=1e-12)


def test_noise_management_scales_back():
    rng = np.random.default_rng(2)
    w, x = rng.uniform(-1, 1, (8, 3)), rng.uniform(0, 1, (4, 8))
    x[0] = 0.0
    big = aihwkit_tile_forward(w, 7.0 * x, ir_drop=1.0, ir_drop_g_ratio=20.0)
    ref = aihwkit_tile_forward(w, x, ir_drop=1.0, ir_drop_g_ratio=20.0)
    np.testing.assert_allclose(big, 7.0 * ref, rtol=1e-12)
    assert np.all(big[0] == 0)


def test_leading_term_is_the_first_order_bit_line_drop():
    """One column of equal cells, ideal row wires: aihwkit with the physical ratio and
    ir_drop = 1 gives the first-order relative loss r g n^2 / 3 (sum_j (1-(1-j/n)^2)/2
    exactly), which the exact circuit's r g (n+1)(2n+1)/6 matches within O(1/n)."""
    n, r, g = 64, 0.05, 1e-5
    ratio = physical_g_ratio(r, g)
    y = aihwkit_ir_drop_forward(np.ones((n, 1)), np.ones(n), ir_drop=1.0, ir_drop_g_ratio=ratio)
    a = n * r * g * n
    c = a * (a * (0.05 * a - 0.2) + 0.5)
    j = np.arange(n)
    assert 1 - y[0, 0] / n == pytest.approx(c * np.sum(1 - (1 - j / n) ** 2) / n, rel=1e-12)
    exact = exact_tile_output(np.ones((n, 1)), np.ones(n), r_row=0.0, r_col=r, g_max=g)
    nf_exact = 1 - exact[0, 0] / n
    assert nf_exact == pytest.approx(r * g * (n + 1) * (2 * n + 1) / 6, rel=0.02)
    assert 1 - y[0, 0] / n == pytest.approx(nf_exact, rel=0.05)


def test_exact_output_uses_the_physical_row_order():
    rng = np.random.default_rng(3)
    w, x = rng.uniform(0, 1, (6, 4)), rng.uniform(0, 1, (2, 6))
    y = exact_tile_output(w, x, r_row=2.0, r_col=2.0, g_max=1e-4, rows="aihwkit")
    geff = effective_conductance(Crossbar(w[::-1] * 1e-4, r_row=2.0, r_col=2.0))
    np.testing.assert_allclose(y, x @ geff[::-1] / 1e-4, rtol=1e-12)
    y_nat = exact_tile_output(w, x, r_row=2.0, r_col=2.0, g_max=1e-4, rows="natural")
    geff_nat = effective_conductance(Crossbar(w * 1e-4, r_row=2.0, r_col=2.0))
    np.testing.assert_allclose(y_nat, x @ geff_nat / 1e-4, rtol=1e-12)


# --------------------------------------------------------------------- against aihwkit
def _aihwkit_forward(w: np.ndarray, x: np.ndarray, ir_drop: float, ratio: float) -> np.ndarray:
    import torch
    from aihwkit.nn import AnalogLinear
    from aihwkit.simulator.configs import InferenceRPUConfig
    from aihwkit.simulator.parameters.enums import BoundManagementType, NoiseManagementType

    config = InferenceRPUConfig()
    fwd = config.forward
    fwd.inp_res = fwd.out_res = -1.0          # no DAC / ADC quantization
    fwd.inp_noise = fwd.out_noise = fwd.w_noise = 0.0
    fwd.inp_bound = 1.0                       # abs-max noise management needs bound 1
    fwd.out_bound = 1e9
    fwd.noise_management = NoiseManagementType.ABS_MAX
    fwd.bound_management = BoundManagementType.NONE
    fwd.ir_drop, fwd.ir_drop_g_ratio = ir_drop, ratio
    config.mapping.weight_scaling_omega = 0.0
    config.mapping.max_input_size = config.mapping.max_output_size = 0
    layer = AnalogLinear(w.shape[0], w.shape[1], bias=False, rpu_config=config)
    layer.set_weights(torch.tensor(w.T, dtype=torch.float32))
    layer.eval()
    with torch.no_grad():
        return layer(torch.tensor(x, dtype=torch.float32)).double().numpy()


@needs_aihwkit
@pytest.mark.parametrize(("n_in", "n_out", "ratio"), [(16, 8, 200.0), (64, 32, 5000.0),
                                                      (100, 10, AIHWKIT_DEFAULT_G_RATIO / 50)])
def test_matches_aihwkit_forward(n_in, n_out, ratio):
    rng = np.random.default_rng(n_in)
    w = rng.uniform(-1, 1, (n_in, n_out)).astype(np.float32).astype(np.float64)
    x = rng.uniform(-1, 1, (6, n_in)).astype(np.float32).astype(np.float64)
    ideal = x @ w
    for s in (0.0, 1.0, 3.0):
        ours = aihwkit_tile_forward(w, x, ir_drop=s, ir_drop_g_ratio=ratio)
        theirs = _aihwkit_forward(w, x, s, ratio)
        scale = np.abs(ideal).max()
        np.testing.assert_allclose(theirs, ours, atol=2e-5 * scale, rtol=0)
        if s > 0:  # the drop itself, not only the ideal product, agrees
            np.testing.assert_allclose(ideal - theirs, ideal - ours,
                                       atol=2e-5 * scale + 1e-3 * np.abs(ideal - ours).max())


@needs_aihwkit
def test_to_inference_rpu_config_sets_the_fit(tmp_path):
    cal = _cal()
    config = to_inference_rpu_config(cal)
    assert config.forward.ir_drop == pytest.approx(cal.ir_drop)
    assert config.forward.ir_drop_g_ratio == pytest.approx(cal.ir_drop_g_ratio)
    assert config.mapping.max_input_size == cal.rows
    path = export_aihwkit_config(cal, tmp_path / "cal.json")
    loaded = load_inference_rpu_config(path)
    assert loaded.forward.ir_drop == pytest.approx(cal.ir_drop)
    assert type(loaded).__name__ == "InferenceRPUConfig"


@needs_aihwkit
def test_aihwkit_with_the_exported_config_reproduces_the_exact_error():
    """aihwkit itself, run with the exported InferenceRPUConfig (other non-idealities off),
    gives an output error within 10 % of the exact circuit's on held-out inputs."""
    import torch
    from aihwkit.nn import AnalogLinear
    from aihwkit.simulator.parameters.enums import BoundManagementType

    rng = np.random.default_rng(6)
    w = rng.uniform(-1, 1, (64, 32))
    cal = fit_aihwkit_ir_drop(w, rng.uniform(0, 1, (16, 64)), r_row=0.35, r_col=0.35,
                              g_max=5e-6)
    config = to_inference_rpu_config(cal)
    fwd = config.forward
    fwd.inp_res = fwd.out_res = -1.0
    fwd.inp_noise = fwd.out_noise = fwd.w_noise = 0.0
    fwd.out_bound = 1e9
    fwd.bound_management = BoundManagementType.NONE
    layer = AnalogLinear(64, 32, bias=False, rpu_config=config)
    layer.set_weights(torch.tensor(0.3 * w.T, dtype=torch.float32))   # any scale: remapped
    layer.eval()
    x = rng.uniform(0, 1, (16, 64))
    with torch.no_grad():
        y = layer(torch.tensor(x, dtype=torch.float32)).double().numpy() / 0.3
    exact = exact_tile_output(w, x, r_row=0.35, r_col=0.35, g_max=5e-6)
    err_exact = np.linalg.norm(exact - x @ w) / np.linalg.norm(x @ w)
    err_aihwkit = np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w)
    assert err_aihwkit == pytest.approx(err_exact, rel=0.10)


def test_missing_aihwkit_names_the_extra(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "aihwkit" or m.startswith("aihwkit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "aihwkit", None)
    cal = _cal()
    with pytest.raises(MissingDependencyError, match=r"pip install 'xbar-circuit\[aihwkit\]'"):
        to_inference_rpu_config(cal)
    path = export_aihwkit_config(cal, tmp_path / "cal.json")   # writing needs no aihwkit
    with pytest.raises(ImportError, match=r"xbar-circuit\[aihwkit\]"):
        load_inference_rpu_config(path)


# --------------------------------------------------------------------------------- fit
_CALS: dict[str, AihwkitCalibration] = {}


def _cal() -> AihwkitCalibration:
    if "small" not in _CALS:
        rng = np.random.default_rng(4)
        _CALS["small"] = fit_aihwkit_ir_drop(rng.uniform(-1, 1, (32, 16)),
                                             rng.uniform(0, 1, (8, 32)), r_row=0.35,
                                             r_col=0.35, g_max=5e-6)
    return _CALS["small"]


@pytest.mark.parametrize(("rows", "cols", "r_wire", "g_max", "g_off", "periphery"), [
    (32, 32, 0.35, 5e-6, 0.0, 0.0),      # the aihwkit_ir_drop preset
    (64, 32, 1.0, 1e-5, 0.0, 0.0),
    (48, 24, 1.0, 2e-5, 1e-6, 1.0),      # g_off and driver/sense resistance
])
def test_fit_reproduces_the_exact_error(rows, cols, r_wire, g_max, g_off, periphery):
    rng = np.random.default_rng(rows + cols)
    kw = {"r_row": r_wire, "r_col": r_wire, "g_max": g_max, "g_off": g_off,
          "r_driver": periphery, "r_sense": periphery}
    fit_w = [rng.uniform(-1, 1, (rows, cols)) for _ in range(2)]
    fit_x = [rng.uniform(0, 1, (16, rows)) for _ in range(2)]
    cal = fit_aihwkit_ir_drop(fit_w, fit_x, **kw)
    # aihwkit with its physical parameters under-predicts the exact error
    assert cal.error_before < 0.6 * cal.error_exact
    assert cal.error_after == pytest.approx(cal.error_exact, rel=1e-6)
    assert cal.mismatch_after < cal.mismatch_before
    # held out: other weights (normal, like trained ones) and inputs
    w_test = np.clip(rng.normal(0, 0.4, (rows, cols)), -1, 1)
    x_test = rng.uniform(0, 1, (16, rows))
    res = cal.evaluate(w_test, x_test)
    assert res["error_after"] == pytest.approx(res["error_exact"], rel=0.10)
    assert res["error_before"] < 0.6 * res["error_exact"]


def test_output_objective_and_g_ratio():
    rng = np.random.default_rng(5)
    w, x = rng.uniform(-1, 1, (32, 16)), rng.uniform(0, 1, (8, 32))
    cal = fit_aihwkit_ir_drop(w, x, r_row=1.0, r_col=1.0, g_max=1e-5, objective="output",
                              fit_g_ratio=True)
    err = _cal()
    assert cal.objective == "output" and err.objective == "error"
    assert cal.mismatch_after <= cal.mismatch_before
    assert cal.error_after == pytest.approx(cal.error_exact, rel=0.10)


def test_export_json(tmp_path):
    cal = _cal()
    path = export_aihwkit_config([cal], tmp_path / "x.json")
    data = json.loads(path.read_text())
    entry = data["configs"][0]
    assert entry["forward"] == {"ir_drop": cal.ir_drop, "ir_drop_g_ratio": cal.ir_drop_g_ratio}
    assert entry["mapping"]["max_input_size"] == 32
    assert entry["fit"]["error_exact"] == cal.error_exact


# ------------------------------------------------------------------------------ errors
def test_bad_inputs_raise_named_errors(tmp_path):
    w = np.full((4, 2), 0.5)
    with pytest.raises(InputError, match=r"\[-1, 1\]"):
        aihwkit_ir_drop_forward(3 * w, np.ones(4))
    with pytest.raises(InputError, match="shape"):
        aihwkit_ir_drop_forward(w, np.ones(5))
    with pytest.raises(SpecError, match="ir_drop"):
        aihwkit_ir_drop_forward(w, np.ones(4), ir_drop=-1.0)
    with pytest.raises(SpecError, match="ir_drop_g_ratio"):
        aihwkit_ir_drop_forward(w, np.ones(4), ir_drop_g_ratio=0.0)
    with pytest.raises(SpecError, match="objective"):
        fit_aihwkit_ir_drop(w, np.ones(4), r_row=1, r_col=1, g_max=1e-5, objective="x")
    with pytest.raises(SpecError, match="fit_g_ratio"):
        fit_aihwkit_ir_drop(w, np.ones(4), r_row=1, r_col=1, g_max=1e-5, fit_g_ratio=True)
    with pytest.raises(SpecError, match="r_row"):
        fit_aihwkit_ir_drop(w, np.ones(4), r_row=-1, r_col=1, g_max=1e-5)
    with pytest.raises(InputError, match="no error"):
        fit_aihwkit_ir_drop(w, np.ones(4), r_row=0, r_col=0, g_max=1e-5)
    with pytest.raises(InputError, match="zero"):
        fit_aihwkit_ir_drop(w, np.zeros(4), r_row=1, r_col=1, g_max=1e-5)
    with pytest.raises(InputError, match="input sets"):
        fit_aihwkit_ir_drop([w, w], [np.ones(4)], r_row=1, r_col=1, g_max=1e-5)
    with pytest.raises(SpecError, match="rows"):
        exact_tile_output(w, np.ones(4), r_row=1, r_col=1, g_max=1e-5, rows="up")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="format"):
        load_inference_rpu_config(bad)


# -------------------------------------------------------------------------------- docs
def test_docs_examples_run(tmp_path, monkeypatch):
    """The ```python blocks of docs/aihwkit.md run in order (aihwkit's only where it runs)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "aihwkit.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_example"}
    for index, code in enumerate(blocks):
        if "load_inference_rpu_config(" in code and AIHWKIT_REASON is not None:
            continue
        exec(compile(code, f"docs/aihwkit.md, example {index}", "exec"), namespace)
    assert (tmp_path / "aihwkit_ir_drop.json").exists()


def test_malformed_files_and_non_numbers_are_named_errors(tmp_path):
    """Strings as weights, mismatched or NaN outputs, and a calibration file with a
    malformed entry raised ValueError/KeyError (or returned NaN) instead of InputError."""
    from xbar_circuit.aihwkit_calibration import JSON_FORMAT, output_error

    with pytest.raises(InputError, match="weights"):
        aihwkit_ir_drop_forward([["a"]], np.ones(1))
    with pytest.raises(InputError, match="inputs"):
        aihwkit_ir_drop_forward(np.zeros((1, 1)), ["x"])
    with pytest.raises(InputError, match="shape"):
        output_error(np.ones(3), np.ones(4))
    with pytest.raises(InputError, match="finite"):
        output_error(np.full(3, np.nan), np.ones(3))
    assert output_error(np.zeros(3), np.zeros(3)) == 0.0
    for configs, match in [([{"x": 1}], "malformed"), ({"a": 1}, "list")]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"format": JSON_FORMAT, "configs": configs}))
        for kwargs in ({}, {"rows": 64}, {"label": "x"}):
            with pytest.raises(InputError, match=match):
                load_inference_rpu_config(bad, **kwargs)
