"""Hard nonlinear cases: the solvers fall back (gmin/source stepping) or raise, never hang.

Reproducers from a review: strongly nonlinear sinh cells (k = 20 /V) driven far into
their exponential region, where plain Newton overflows or its linear systems break
down.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from xbar_circuit import ConvergenceError, Crossbar, Sinh, solve


def _hard(r_row: float = 1.0, size: int = 8) -> Crossbar:
    return Crossbar.random(size, size, r_row=r_row, r_col=1.0, r_driver=10.0, seed=0,
                           device=Sinh(20.0))


def _finite_or_convergence_error(xbar: Crossbar, volts: float, backend: str):
    try:
        sol = solve(xbar, np.full(xbar.n_rows, volts), backend=backend)
    except ConvergenceError as exc:
        assert exc.iterations > 0 and np.isfinite(exc.tolerance)
        return None
    assert np.all(np.isfinite(sol.column_currents))
    return sol


@pytest.mark.parametrize(("r_row", "size", "volts", "backend"), [
    (1.0, 8, 5.0, "reference"),   # used to loop forever in the line search
    (0.0, 8, 5.0, "nodal"),       # zero-ohm rows: graph solver, same loop
    (1.0, 4, 3.0, "reference"),   # used to raise a bare "Factor is exactly singular"
])
def test_no_hang_and_no_bare_error(r_row: float, size: int, volts: float, backend: str) -> None:
    _finite_or_convergence_error(_hard(r_row, size), volts, backend)


def test_nodal_falls_back_when_newton_linear_solves_break_down() -> None:
    """Plain Newton's CG breaks down here; gmin/source stepping must still converge
    and agree with the independent reference Newton (and ngspice when installed)."""
    xbar = _hard()
    v = np.full(8, 2.5)
    ours = solve(xbar, v, backend="nodal")
    ref = solve(xbar, v, backend="reference")
    np.testing.assert_allclose(ours.column_currents, ref.column_currents, rtol=1e-6)
    if shutil.which("ngspice"):
        spice = solve(xbar, v, backend="ngspice")
        np.testing.assert_allclose(ours.column_currents, spice.column_currents, rtol=1e-6)
