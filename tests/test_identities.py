"""Physical identities every backend must satisfy (docs/convention.md §3)."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.validation.checks import kcl_residuals

CASES = [
    # (M, N, r_row, r_col, r_driver, r_sense)
    (1, 1, 1.0, 1.0, 0.0, 0.0),
    (5, 7, 2.0, 0.5, 0.0, 0.0),
    (6, 4, 1.0, 3.0, 50.0, 20.0),
    (9, 3, 0.0, 1.0, 10.0, 0.0),
    (3, 9, 1.0, 0.0, 0.0, 10.0),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_kcl_at_every_node_and_output_current(backend: str, case) -> None:
    m, n, r_row, r_col, r_driver, r_sense = case
    xbar = Crossbar.random(m, n, r_row=r_row, r_col=r_col, r_driver=r_driver,
                           r_sense=r_sense, g_off=1e-6, g_on=1e-3, seed=m * 100 + n)
    v_in = np.random.default_rng(n).uniform(-0.3, 0.5, m)
    sol = solve(xbar, v_in, backend=backend)
    row_res, col_res = kcl_residuals(sol)
    scale = np.abs(xbar.conductance * v_in[:, None]).sum()
    # Currents are differences of node voltages times conductances up to 1/r: the
    # residual is bounded by (rounding of V ~ 1e-16 V) x (largest conductance).
    g_max = max(1.0 / r for r in (r_row, r_col, r_row + r_driver, r_col + r_sense) if r > 0)
    atol = 1e-9 * scale + 1e-14 * g_max
    assert np.abs(row_res).max() <= atol
    assert np.abs(col_res).max() <= atol
    # The output current is what flows through the last segment into the virtual ground.
    r_last = r_col + r_sense
    if r_last > 0:
        np.testing.assert_allclose(sol.column_currents, sol.column_voltages[-1] / r_last,
                                   rtol=1e-6, atol=1e-14 * g_max)
    np.testing.assert_allclose(sol.column_currents, sol.cell_currents.sum(axis=0),
                               rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_power_delivered_equals_power_dissipated(backend: str, case) -> None:
    m, n, r_row, r_col, r_driver, r_sense = case
    xbar = Crossbar.random(m, n, r_row=r_row, r_col=r_col, r_driver=r_driver,
                           r_sense=r_sense, g_off=1e-5, g_on=1e-3, seed=7 + m)
    v_in = np.random.default_rng(m).uniform(0.05, 0.4, m)
    sol = solve(xbar, v_in, backend=backend)
    assert sol.power_delivered > 0
    assert sol.power_dissipated == pytest.approx(sol.power_delivered, rel=1e-9)


def test_zero_parasitics_give_exactly_v_times_g(backend: str) -> None:
    xbar = Crossbar.random(6, 5, r_row=0.0, r_col=0.0, seed=2)
    v_in = np.random.default_rng(1).uniform(-1, 1, (3, 6))
    if backend == "ngspice":
        v_in = v_in[0]
    sol = solve(xbar, v_in, backend=backend)
    ideal = np.asarray(v_in) @ xbar.conductance
    tol = 0.0 if backend == "nodal" else 1e-14
    np.testing.assert_allclose(sol.column_currents, ideal, rtol=tol, atol=0)
    np.testing.assert_allclose(sol.cell_voltages, np.broadcast_to(
        np.asarray(v_in)[..., None], sol.cell_voltages.shape), rtol=tol, atol=0)


@pytest.mark.parametrize("shape", [(4, 6), (7, 3)])
def test_reciprocity(shape: tuple[int, int]) -> None:
    """The network is reciprocal: swapping the roles of a driver port and a sense port.

    The mirrored array has the columns as rows (driven at the old sense end) and the
    rows as columns (sensed at the old driver end): G' = G[::-1, ::-1].T, with
    r_row' = r_col, r_col' = r_row, r_driver' = r_sense, r_sense' = r_driver. Then
    G_eff[i, j] = G'_eff[N-1-j, M-1-i].
    """
    m, n = shape
    xbar = Crossbar.random(m, n, r_row=3.0, r_col=7.0, r_driver=40.0, r_sense=15.0,
                           g_off=1e-5, g_on=1e-3, seed=5)
    mirror = Crossbar(xbar.conductance[::-1, ::-1].T, r_row=7.0, r_col=3.0, r_driver=15.0,
                      r_sense=40.0)
    g_eff = solve(xbar, np.eye(m), backend="reference").column_currents
    g_eff_mirror = solve(mirror, np.eye(n), backend="reference").column_currents
    np.testing.assert_allclose(g_eff, g_eff_mirror[::-1, ::-1].T, rtol=1e-12)
    # The parasitics matter here: G_eff differs visibly from G.
    assert np.abs(g_eff - xbar.conductance).max() > 1e-3 * xbar.conductance.max()


def test_linearity_and_superposition() -> None:
    xbar = Crossbar.random(5, 6, r_row=2.0, r_col=2.0, r_driver=5.0, seed=9)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5)
    sol = solve(xbar, np.stack([a, b, 2 * a - 3 * b]), backend="reference")
    i = sol.column_currents
    np.testing.assert_allclose(i[2], 2 * i[0] - 3 * i[1], rtol=1e-12, atol=1e-20)
