"""Compensation by programming: the adjoint gradient against finite differences, and
compensated arrays against exact solves of the programmed circuit."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import TIA, Crossbar, Sinh, effective_conductance, solve
from xbar_circuit.compensate import compensate, effective_conductance_gradient
from xbar_circuit.errors import InputError, SpecError

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
    with pytest.raises(SpecError, match="linear"):
        compensate(xbar.replace(device=Sinh(2.0)), g_off=1e-6, g_on=1e-4)
    with pytest.raises(InputError, match="g_off, g_on"):
        compensate(xbar, g_off=5e-5, g_on=1e-4)
    with pytest.raises(InputError, match="levels"):
        compensate(xbar, g_off=1e-6, g_on=1e-4, levels=[1e-7, 1e-4])
    with pytest.raises(InputError, match="v_cal"):
        compensate(xbar, g_off=1e-6, g_on=1e-4, v_cal=np.zeros((3, 5)))
    with pytest.raises(InputError, match="g_off < g_on"):
        compensate(xbar, g_off=1e-4, g_on=1e-6)
