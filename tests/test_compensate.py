"""Compensation by programming: the adjoint gradient against finite differences, and
compensated arrays against exact solves of the programmed circuit."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import TIA, Crossbar, Sinh, effective_conductance, solve
from xbar_circuit.compensate import (
    CompensationError,
    TargetRangeError,
    compensate,
    effective_conductance_gradient,
    operating_point_conductance,
    operating_point_gradient,
)
from xbar_circuit.devices import OneS1R, Selector
from xbar_circuit.errors import ConvergenceError, InputError, SpecError

TOPOLOGIES = [
    {},
    {"driver_side": "right", "sense_side": "top"},
    {"driver_side": "both", "tia": TIA(gain=1e3, r_feedback=1e4)},
    {"r_row": 0.0, "r_driver": 5.0},
    {"r_col": np.tile([1.0, 0.0, 2.0, 3.0, 0.5], (4, 1)).T[:, :4].copy(), "sense_load": 10.0},
]


@pytest.mark.parametrize("extra", TOPOLOGIES)
def test_adjoint_gradient_matches_finite_differences(extra) -> None:
    base = {"r_row": 2.0, "r_col": 3.0, "r_driver": 1.0, "r_sense": 2.0, **extra}
    xbar = Crossbar.random(5, 4, g_off=1e-3, g_on=1e-2, seed=1, **base)
    g = np.array(xbar.conductance)
    weights = np.random.default_rng(2).normal(size=g.shape)
    value, grad, g_eff = effective_conductance_gradient(
        xbar, g, lambda ge: (float(np.sum(weights * ge)), weights))
    np.testing.assert_allclose(g_eff, effective_conductance(xbar), rtol=1e-10)
    assert value == pytest.approx(float(np.sum(weights * g_eff)), rel=1e-12)
    h = 1e-7
    fd = np.empty_like(g)
    for cell in np.ndindex(g.shape):
        up, down = g.copy(), g.copy()
        up[cell] += h
        down[cell] -= h
        fd[cell] = np.sum(weights * (effective_conductance(xbar.replace(conductance=up))
                                     - effective_conductance(xbar.replace(conductance=down))))
        fd[cell] /= 2 * h
    # Central differences of an exact linear solve: truncation O(h²), rounding ~1e-9.
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_compensated_array_computes_the_target() -> None:
    xbar = Crossbar.random(24, 20, r_row=2.0, r_col=2.0, r_driver=5.0, g_off=1e-6,
                           g_on=1e-4, seed=3)
    result = compensate(xbar, g_off=1e-6, g_on=3e-4)
    assert np.all(result.g_prog >= 1e-6) and np.all(result.g_prog <= 3e-4)
    # Independent check: solve the programmed circuit on fresh inputs.
    v = np.random.default_rng(4).uniform(0.0, 0.2, size=(8, 24))
    real = solve(xbar.replace(conductance=result.g_prog), v, backend="reference")
    ideal = v @ xbar.conductance
    uncompensated = solve(xbar, v, backend="reference").column_currents
    err_after = np.linalg.norm(real.column_currents - ideal) / np.linalg.norm(ideal)
    err_before = np.linalg.norm(uncompensated - ideal) / np.linalg.norm(ideal)
    assert err_after < 1e-6 * err_before
    assert result.error_after < 1e-6 * result.error_before


def test_range_limits_what_compensation_can_reach() -> None:
    """With the target at the top of the range the far cells cannot be raised: the
    bounded optimum still beats the fixed point alone and stays inside the range."""
    xbar = Crossbar(np.full((16, 16), 1e-3), r_row=1.0, r_col=1.0)
    fixed = compensate(xbar, g_off=1e-6, g_on=1.2e-3, max_iter=0)
    full = compensate(xbar, g_off=1e-6, g_on=1.2e-3, max_iter=30)
    assert full.error_after <= fixed.error_after
    assert 0.0 < full.error_after < full.error_before
    assert float(full.g_prog.max()) <= 1.2e-3


def test_levels_and_calibration_inputs() -> None:
    xbar = Crossbar.random(12, 10, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4, seed=5)
    levels = np.linspace(1e-6, 2e-4, 64)
    v_cal = np.random.default_rng(6).uniform(0.0, 0.2, size=(30, 12))
    result = compensate(xbar, g_off=1e-6, g_on=2e-4, levels=levels, v_cal=v_cal)
    assert np.all(np.isin(result.g_prog, levels))
    ideal = v_cal @ xbar.conductance
    real = v_cal @ effective_conductance(xbar.replace(conductance=result.g_prog))
    assert np.linalg.norm(real - ideal) / np.linalg.norm(ideal) == pytest.approx(
        result.error_after, rel=1e-9)
    assert result.error_after < result.error_before


def test_named_errors() -> None:
    xbar = Crossbar.random(4, 4, r_row=1.0, r_col=1.0, g_off=1e-6, g_on=1e-4, seed=7)
    with pytest.raises(SpecError, match="Crossbar"):
        compensate("not a crossbar", g_off=1e-6, g_on=1e-4)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="v_read"):
        compensate(xbar.replace(device=Sinh(2.0)), g_off=1e-6, g_on=1e-4)
    with pytest.raises(InputError, match="v_read"):
        compensate(xbar.replace(device=Sinh(2.0)), g_off=1e-6, g_on=1e-4, v_read=-0.1)
    with pytest.raises(TargetRangeError, match="g_off, g_on") as info:
        compensate(xbar, g_off=5e-5, g_on=1e-4)
    # The error says what is out of range and by how much.
    assert info.value.n_below == int(np.sum(xbar.conductance < 5e-5)) > 0
    assert info.value.n_above == 0
    assert info.value.target_min == pytest.approx(float(xbar.conductance.min()))
    assert isinstance(info.value, InputError)
    with pytest.raises(InputError, match="levels"):
        compensate(xbar, g_off=1e-6, g_on=1e-4, levels=[1e-7, 1e-4])
    with pytest.raises(InputError, match="non-empty"):
        compensate(xbar, g_off=1e-6, g_on=1e-4, levels=[])
    with pytest.raises(InputError, match="v_cal"):
        compensate(xbar, g_off=1e-6, g_on=1e-4, v_cal=np.zeros((3, 5)))
    with pytest.raises(InputError, match="zero ideal output"):
        compensate(xbar, g_off=1e-6, g_on=1e-4, v_cal=np.zeros((3, 4)))
    with pytest.raises(InputError, match="g_off < g_on"):
        compensate(xbar, g_off=1e-4, g_on=1e-6)


def test_unreached_tolerance_raises_with_the_result() -> None:
    """No headroom above the target: the error cannot reach tol, and the exception says
    what was reached and carries the best programming."""
    xbar = Crossbar(np.full((8, 8), 1e-3), r_row=1.0, r_col=1.0)
    with pytest.raises(CompensationError, match="reached relative error") as info:
        compensate(xbar, g_off=1e-6, g_on=1e-3, max_iter=5, tol=1e-6)
    result = info.value.result
    assert result is not None and 0.0 < result.error_after <= result.error_before
    assert info.value.residual == result.error_after and info.value.tolerance == 1e-6
    assert isinstance(info.value, ConvergenceError)
    assert float(result.g_prog.max()) <= 1e-3


def test_solver_failure_during_compensation_is_named(monkeypatch) -> None:
    import xbar_circuit.compensate as comp

    xbar = Crossbar.random(6, 5, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4,
                           seed=8).replace(device=Sinh(2.0))
    real = comp._operating_points
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise ConvergenceError("nodal Newton did not converge", iterations=50,
                                   residual=1e-3, tolerance=1e-12)
        return real(*args, **kwargs)

    monkeypatch.setattr(comp, "_operating_points", flaky)
    with pytest.raises(CompensationError, match="did not converge during compensation") as e:
        compensate(xbar, g_off=1e-6, g_on=3e-4, v_read=0.3)
    assert e.value.result is not None
    assert e.value.result.error_after <= e.value.result.error_before
    assert not e.value.result.converged


# ---------------------------------------------------------------- nonlinear cells
NONLINEAR = [Sinh(3.0), OneS1R(Selector(i_0=1e-6, v_0=0.1), Sinh(2.0))]


@pytest.mark.parametrize("device", NONLINEAR, ids=["sinh", "1s1r"])
@pytest.mark.parametrize("extra", TOPOLOGIES[:3])
def test_operating_point_gradient_matches_reference_finite_differences(device, extra) -> None:
    """The adjoint of the Jacobian at the converged operating point against central
    differences of full nonlinear solves by the independent reference backend."""
    base = {"r_row": 2.0, "r_col": 3.0, "r_driver": 1.0, "r_sense": 2.0, **extra}
    xbar = Crossbar.random(5, 4, g_off=1e-4, g_on=1e-3, seed=1, **base).replace(device=device)
    g = np.array(xbar.conductance)
    v = np.random.default_rng(3).uniform(0.0, 0.5, size=(3, 5))
    w = np.random.default_rng(2).normal(size=(3, 4))
    _value, grad, currents = operating_point_gradient(
        xbar, g, v, lambda i: (float(np.sum(w * i)), w))
    reference = solve(xbar, v, backend="reference").column_currents
    np.testing.assert_allclose(currents, reference, rtol=0, atol=1e-10 * np.abs(reference).max())
    fd = np.empty_like(g)
    for cell in np.ndindex(g.shape):
        h = 1e-4 * g[cell]
        up, down = g.copy(), g.copy()
        up[cell] += h
        down[cell] -= h
        fd[cell] = np.sum(w * (solve(xbar.replace(conductance=up), v, backend="reference")
                               .column_currents
                               - solve(xbar.replace(conductance=down), v, backend="reference")
                               .column_currents)) / (2 * h)
    # Truncation O(h²) of the central difference and the Newton tolerance: ~1e-8.
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_operating_point_conductance_is_the_secant_and_g_eff_for_linear_cells() -> None:
    xbar = Crossbar.random(6, 5, r_row=2.0, r_col=1.0, g_off=1e-5, g_on=1e-4, seed=9)
    np.testing.assert_allclose(operating_point_conductance(xbar, 0.3),
                               effective_conductance(xbar), rtol=1e-10)
    cell = Crossbar(np.full((1, 1), 1e-4), r_row=0.0, r_col=0.0, device=Sinh(3.0))
    # One ideal sinh cell: I/V = g sinh(kv)/(kv), not the differential g cosh(kv).
    assert operating_point_conductance(cell, 0.2)[0, 0] == pytest.approx(
        1e-4 * np.sinh(0.6) / 0.6, rel=1e-12)


def test_nonlinear_compensation_at_the_read_voltage() -> None:
    """After compensation the reference backend's currents at the read voltage are the
    target's, within the error compensate() reports."""
    xbar = Crossbar.random(16, 12, r_row=2.0, r_col=2.0, r_driver=5.0, g_off=1e-6,
                           g_on=1e-4, seed=3).replace(device=Sinh(3.0))
    t = xbar.conductance
    result = compensate(xbar, g_off=1e-6, g_on=3e-4, v_read=0.2)
    assert result.v_read == 0.2 and result.error_after < 1e-6 * result.error_before
    reads = solve(xbar.replace(conductance=result.g_prog), 0.2 * np.eye(16),
                  backend="reference").column_currents / 0.2
    err = np.sqrt(np.mean(np.sum((reads - t) ** 2, axis=0) / np.sum(t * t, axis=0)))
    assert err <= max(2 * result.error_after, 1e-12)
    np.testing.assert_allclose(result.g_eff, reads, rtol=0, atol=1e-9 * t.max())
    # The uncompensated array is off by the reported error_before.
    raw = solve(xbar, 0.2 * np.eye(16), backend="reference").column_currents / 0.2
    raw_err = np.sqrt(np.mean(np.sum((raw - t) ** 2, axis=0) / np.sum(t * t, axis=0)))
    assert raw_err == pytest.approx(result.error_before, rel=1e-9)


def test_nonlinear_compensation_on_calibration_inputs_with_levels() -> None:
    xbar = Crossbar.random(12, 10, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4,
                           seed=5).replace(device=Sinh(2.0))
    t = xbar.conductance
    v_cal = np.random.default_rng(6).choice([0.0, 0.25], size=(20, 12))   # bit planes
    result = compensate(xbar, g_off=1e-6, g_on=2e-4, v_cal=v_cal, max_iter=30)
    assert result.v_read == 0.25
    real = solve(xbar.replace(conductance=result.g_prog), v_cal,
                 backend="reference").column_currents
    err = np.linalg.norm(real - v_cal @ t) / np.linalg.norm(v_cal @ t)
    assert err == pytest.approx(result.error_after, rel=1e-6)
    assert result.error_after < 0.01 * result.error_before
    levels = np.linspace(1e-6, 2e-4, 256)
    rounded = compensate(xbar, g_off=1e-6, g_on=2e-4, v_cal=v_cal, max_iter=30,
                         levels=levels)
    assert np.all(np.isin(rounded.g_prog, levels))
    real = solve(xbar.replace(conductance=rounded.g_prog), v_cal,
                 backend="reference").column_currents
    err = np.linalg.norm(real - v_cal @ t) / np.linalg.norm(v_cal @ t)
    assert err == pytest.approx(rounded.error_after, rel=1e-6)
    assert rounded.error_after < rounded.error_before


# ---------------------------------------------------------------- mapping integration
def _small_layer(rows: int = 24, outs: int = 4, tile: int = 32):
    from xbar_circuit.mapping import MappingConfig, map_layer

    w = np.random.default_rng(10).normal(size=(rows, outs))
    return map_layer(w, MappingConfig(tile_rows=tile, tile_cols=tile))


def test_compensated_layer_bit_weighted_error() -> None:
    from xbar_circuit.mapping import (
        CircuitParams,
        MappingCircuit,
        compensate_layer,
        compensation_summary,
        layer_nf,
        output_error,
        tile_crossbar,
    )
    from xbar_circuit.mapping.quantize import MappingError

    layer = _small_layer()
    circuit = CircuitParams(r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    comp = compensate_layer(layer, circuit)
    before, after = layer_nf(layer, circuit), layer_nf(comp, circuit)
    assert after.bw_error_allon < 1e-3 * before.bw_error_allon
    summary = compensation_summary(comp)
    assert summary["tiles"] == len(layer.tiles) and summary["error_after"] < 1e-3
    g_on = layer.config.g_on
    for old, new in zip(layer.tiles, comp.tiles, strict=True):
        np.testing.assert_array_equal(new.conductance, old.conductance)   # the target
        assert new.programmed is not None
        assert new.programmed.min() >= layer.config.g_off and new.programmed.max() <= 2 * g_on
        np.testing.assert_array_equal(tile_crossbar(new, circuit).conductance, new.programmed)
        # Reordering a compensated tile keeps each cell's programmed value with it.
        order = np.arange(new.shape[0])[::-1]
        np.testing.assert_array_equal(new.with_row_order(order).programmed,
                                      new.programmed[order])
    x = np.random.default_rng(11).uniform(0.0, 1.0, size=(16, layer.shape[0]))
    assert output_error(comp, x, circuit) < 1e-3 * output_error(layer, x, circuit)
    # Programming variability acts on the compensated conductances.
    noisy = MappingCircuit(circuit.crossbar(np.zeros((1, 1))), sigma=0.05, seed=1)
    assert layer_nf(comp, noisy).bw_error_allon > after.bw_error_allon
    # Quantized device levels: rounded programming, still far better than none.
    levels = np.linspace(layer.config.g_off, 2 * g_on, 256)
    quant = compensate_layer(layer, circuit, levels=levels)
    assert all(np.all(np.isin(t.programmed, levels)) for t in quant.tiles)
    assert layer_nf(quant, circuit).bw_error_allon < 0.2 * before.bw_error_allon
    with pytest.raises(MappingError, match="nothing to compensate"):
        compensate_layer(layer, CircuitParams(0.0, 0.0, 0.0, 0.0))
    with pytest.raises(MappingError, match="g_max"):
        compensate_layer(layer, circuit, g_max=0.5 * g_on)
    with pytest.raises(MappingError, match="x_cal"):
        compensate_layer(layer, circuit, x_cal=np.ones((2, 3)))


def test_compensated_layer_nonlinear_cells_on_calibration_inputs() -> None:
    from xbar_circuit.mapping import compensate_layer, output_error

    layer = _small_layer(rows=12, outs=2, tile=16)
    template = Crossbar(np.full((16, 16), 1e-5), r_row=2.0, r_col=2.0, r_driver=1.0,
                        device=Sinh(3.0))
    x = np.random.default_rng(12).uniform(0.0, 1.0, size=(12, layer.shape[0]))
    comp = compensate_layer(layer, template, x_cal=x, max_iter=10)
    assert output_error(comp, x, template) < 0.2 * output_error(layer, x, template)


@pytest.mark.parametrize("name", ["xbar_circuit.compensate", "xbar_circuit.mapping.compensation"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_bad_scalar_options_are_named_errors() -> None:
    """Strings, None, NaN, negative counts and huge calibration inputs are InputErrors,
    not TypeError/ValueError from deep inside, nor silently accepted (tol=NaN)."""
    xbar = Crossbar.random(5, 4, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4, seed=0)
    rng = dict(g_off=1e-6, g_on=2e-4)
    for bad in ("abc", None, np.array([1e-6, 1e-6])):
        with pytest.raises(InputError, match="g_off"):
            compensate(xbar, g_off=bad, g_on=2e-4)
    for kwargs, name in [({"tol": float("nan")}, "tol"), ({"tol": -1.0}, "tol"),
                         ({"tol": "a"}, "tol"),
                         ({"fixed_point_iterations": -3}, "fixed_point_iterations"),
                         ({"fixed_point_iterations": 2.5}, "fixed_point_iterations"),
                         ({"max_iter": float("nan")}, "max_iter"), ({"max_iter": -1}, "max_iter"),
                         ({"v_cal": np.full((2, 5), np.nan)}, "v_cal"),
                         ({"v_cal": np.full((2, 5), np.inf)}, "v_cal"),
                         ({"v_cal": np.full((2, 5), 1e200)}, "v_cal")]:
        with pytest.raises(InputError, match=name):
            compensate(xbar, **rng, **kwargs)
    with pytest.raises(InputError, match="v_read"):
        compensate(xbar.replace(device=Sinh(3.0)), **rng, v_read="x")


def test_compensate_layer_g_max_is_validated() -> None:
    from xbar_circuit.mapping import CircuitParams, compensate_layer
    from xbar_circuit.mapping.quantize import MappingError

    layer = _small_layer(rows=8, outs=2, tile=8)
    circuit = CircuitParams(r_row=2.0, r_col=2.0)
    for bad in (float("nan"), float("inf"), "1e-4"):
        with pytest.raises(MappingError, match="g_max"):
            compensate_layer(layer, circuit, g_max=bad)


def test_operating_point_conductance_refuses_a_zero_or_negative_read_voltage() -> None:
    """v_read = 0 returned an all-NaN matrix (0/0) and a negative one a silent answer."""
    from xbar_circuit.compensate import operating_point_conductance
    from xbar_circuit.mapping import CircuitParams, compensate_layer
    from xbar_circuit.mapping.quantize import MappingError

    nl = Crossbar.random(4, 3, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4,
                         seed=0).replace(device=Sinh(3.0))
    for bad in (0.0, -0.2, float("nan"), "0.2"):
        with pytest.raises(InputError, match="v_read"):
            operating_point_conductance(nl, bad)
    assert np.all(np.isfinite(operating_point_conductance(nl, 0.2)))
    with pytest.raises(MappingError, match="MappedLayer"):
        compensate_layer("layer", CircuitParams(r_row=1.0, r_col=1.0))


def test_fixed_point_at_rounding_level_counts_as_converged() -> None:
    """A fixed point that reaches rounding level stops there and reports convergence
    (checked on an independent solve of the programmed circuit)."""
    xbar = Crossbar.random(24, 24, r_row=0.5, r_col=0.5, g_off=1e-6, g_on=1e-4, seed=3)
    result = compensate(xbar, g_off=1e-6, g_on=4e-4, max_iter=0)
    assert result.converged and "rounding level" in result.message
    assert result.error_after <= 1e-14
    v = np.random.default_rng(2).uniform(0.0, 0.2, (3, 24))
    real = solve(xbar.replace(conductance=result.g_prog), v, backend="reference")
    np.testing.assert_allclose(real.column_currents, v @ xbar.conductance, rtol=1e-9)


def test_coarse_levels_that_undo_compensation_warn() -> None:
    """Two levels cannot hold a compensated array: the result says so and warns."""
    xbar = Crossbar.random(16, 16, r_row=0.5, r_col=0.5, g_off=1e-6, g_on=1e-4, seed=5)
    with pytest.warns(RuntimeWarning, match="rounding to 2 levels"):
        result = compensate(xbar, g_off=1e-6, g_on=2e-4, levels=np.array([1e-6, 2e-4]),
                            max_iter=0)
    assert result.error_after > result.error_before
    assert "exceeds what compensation removed" in result.message
