"""Nonlinear cells: Newton in the nodal and reference backends vs ngspice (1e-6)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HAVE_NGSPICE

from xbar_circuit import Crossbar, solve
from xbar_circuit.devices import AccessTransistor, OneS1R, OneT1R, Selector, Sinh
from xbar_circuit.errors import BackendError, ConvergenceError, SpecError
from xbar_circuit.periphery import TIA

DEVICES = {
    "sinh": Sinh(k=3.0),
    "sinh_strong": Sinh(k=12.0),
    "1s1r": OneS1R(Selector(i_0=1e-6, v_0=0.05)),
    "1s1r_sinh": OneS1R(Selector(i_0=1e-5, v_0=0.08), Sinh(2.0)),
    "1t1r": OneT1R(AccessTransistor(v_th=0.4, k_n=2e-4), v_gate=1.0),
    "1t1r_sinh": OneT1R(AccessTransistor(v_th=0.4, k_n=1e-3), Sinh(3.0), v_gate=1.2),
}

TOPOLOGIES = {
    "default": {},
    "periphery": dict(driver_side="both", sense_side="top", tia=TIA(1e3, 1e4)),
    "load_right": dict(driver_side="right", sense_load=2e3),
}


def _crossbar(m: int, n: int, device, seed: int = 0, **kw) -> Crossbar:
    return Crossbar.random(m, n, r_row=2.0, r_col=2.0, r_driver=10.0, r_sense=10.0,
                           g_off=1e-6, g_on=1e-4, seed=seed, device=device, **kw)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("name", list(DEVICES))
def test_nodal_matches_reference(name: str) -> None:
    xbar = _crossbar(24, 20, DEVICES[name], seed=2)
    v = np.random.default_rng(2).uniform(-0.4, 0.4, (2, 24))
    ref = solve(xbar, v, backend="reference")
    nod = solve(xbar, v, backend="nodal")
    assert _rel(nod.column_currents, ref.column_currents) < 1e-9
    assert np.abs(nod.row_voltages - ref.row_voltages).max() < 1e-9
    assert nod.newton_iterations >= 1
    assert nod.info["newton_iterations"] == nod.newton_iterations


@pytest.mark.parametrize("name", ["sinh", "sinh_strong", "1s1r_sinh", "1t1r_sinh"])
def test_early_newton_stop_keeps_contract(name: str) -> None:
    # At this size plain Newton converges quadratically and stops once the next step,
    # predicted from the residual's reduction, is below 1e-11 of the largest input:
    # the answer must still meet the linear solver's 1e-9 contract against SciPy.
    xbar = _crossbar(64, 48, DEVICES[name], seed=8)
    v = np.random.default_rng(8).uniform(0.0, 0.4, (2, 64))
    ref = solve(xbar, v, backend="reference")
    nod = solve(xbar, v, backend="nodal")
    assert nod.info["newton_strategy"] == ["newton"]   # plain Newton, no continuation
    assert _rel(nod.column_currents, ref.column_currents) < 1e-9
    assert np.abs(nod.column_voltages - ref.column_voltages).max() < 1e-9 * 0.4


ngspice = pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice is not installed")


@ngspice
@pytest.mark.ngspice
@pytest.mark.parametrize("topology", list(TOPOLOGIES))
@pytest.mark.parametrize("name", list(DEVICES))
def test_matches_ngspice_small(name: str, topology: str) -> None:
    xbar = _crossbar(7, 9, DEVICES[name], seed=5, **TOPOLOGIES[topology])
    v = np.random.default_rng(5).uniform(0.0, 0.4, 7)
    spice = solve(xbar, v, backend="ngspice")
    for backend in ("nodal", "reference"):
        ours = solve(xbar, v, backend=backend)
        assert _rel(ours.column_currents, spice.column_currents) < 1e-6, backend
        assert np.abs(ours.row_voltages - spice.row_voltages).max() < 1e-6
        if xbar.tia is not None:
            assert _rel(ours.tia_output_voltages, spice.tia_output_voltages) < 1e-6
        if xbar.sense_load is not None:
            assert _rel(ours.sense_voltages, spice.sense_voltages) < 1e-6


@ngspice
@pytest.mark.ngspice
@pytest.mark.parametrize("name", ["sinh", "1s1r_sinh", "1t1r"])
def test_matches_ngspice_32x32(name: str) -> None:
    xbar = _crossbar(32, 32, DEVICES[name], seed=8)
    v = np.random.default_rng(8).uniform(-0.3, 0.4, 32)
    spice = solve(xbar, v, backend="ngspice")
    ours = solve(xbar, v, backend="nodal")
    assert _rel(ours.column_currents, spice.column_currents) < 1e-6
    assert np.abs(ours.column_voltages - spice.column_voltages).max() < 1e-6


@ngspice
@pytest.mark.ngspice
@pytest.mark.parametrize("options", [{}, {"sense_side": "top", "driver_side": "right"}],
                         ids=["default", "top_right"])
def test_gate_lines_match_ngspice(options: dict) -> None:
    xbar = _crossbar(6, 5, DEVICES["1t1r"], seed=3, **options)
    gates = np.array([1.0, 0.0, 0.8, 1.5, 0.3, 1.0])
    v = np.full(6, 0.3)
    spice = solve(xbar, v, backend="ngspice", v_gate=gates)
    ours = solve(xbar, v, backend="nodal", v_gate=gates)
    assert _rel(ours.column_currents, spice.column_currents) < 1e-6
    assert ours.info["v_gate"] == gates.tolist()


def test_sinh_exceeds_linear_current() -> None:
    linear = _crossbar(10, 10, Sinh(1.0), seed=1).replace(device=Sinh(1e-6))
    strong = linear.replace(device=Sinh(5.0))
    v = np.full(10, 0.3)
    assert np.all(solve(strong, v).column_currents > solve(linear, v).column_currents)


def test_kcl_holds_for_nonlinear_solution() -> None:
    xbar = _crossbar(12, 8, DEVICES["1s1r_sinh"], seed=4)
    sol = solve(xbar, np.full(12, 0.35))
    # every cell current flows into its column's port
    assert _rel(sol.cell_currents.sum(axis=0), sol.column_currents) < 1e-12


def test_batch_equals_one_by_one() -> None:
    xbar = _crossbar(9, 7, DEVICES["sinh"], seed=6)
    v = np.random.default_rng(6).uniform(0, 0.3, (3, 9))
    batch = solve(xbar, v).column_currents
    for b in range(3):
        assert np.array_equal(solve(xbar, v[b]).column_currents, batch[b])


def test_fallback_to_gmin_stepping_is_reported() -> None:
    # plain Newton needs 9 iterations here; with a cap of 5 per attempt the
    # continuation fallbacks (gmin, then source stepping) must take over.
    xbar = _crossbar(6, 6, Sinh(20.0), seed=1)
    v = np.full(6, 0.5)
    good = solve(xbar, v, backend="reference").column_currents
    sol = solve(xbar, v, backend="nodal", newton_max_iter=5)
    assert sol.info["newton_strategy"] != ["newton"]
    assert _rel(sol.column_currents, good) < 1e-9


def test_convergence_error_states_residual() -> None:
    xbar = _crossbar(6, 6, Sinh(40.0), seed=1)
    with pytest.raises(ConvergenceError, match="last KCL residual") as info:
        solve(xbar, np.full(6, 1.0), backend="nodal", newton_max_iter=1)
    assert info.value.iterations > 0
    assert info.value.residual > 0


def test_invalid_options_raise() -> None:
    xbar = _crossbar(3, 3, Sinh(2.0))
    with pytest.raises(BackendError, match="newton_max_iter"):
        solve(xbar, np.zeros(3), newton_max_iter=0)
    with pytest.raises(SpecError, match="no gate"):
        solve(xbar, np.zeros(3), v_gate=1.0)
    gated = _crossbar(3, 3, OneT1R())
    with pytest.raises(SpecError, match="v_gate must be"):
        solve(gated, np.zeros(3), v_gate=[1.0, 2.0])


def test_zero_inputs_give_zero() -> None:
    xbar = _crossbar(5, 4, DEVICES["1t1r_sinh"])
    sol = solve(xbar, np.zeros(5))
    assert np.all(sol.column_currents == 0.0)
