"""The compiled ``"nodal"`` backend against the ``"reference"`` graph solver.

Contract: column currents agree with ``"reference"`` to 1e-9 relative on
seeded random arrays of every shape and parameter range; batches equal one-by-one
solves; edge cases give correct answers or a clear error, never a silent NaN.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xbar_circuit import (
    BackendError,
    ConvergenceError,
    Crossbar,
    InputError,
    solve,
)
from xbar_circuit.cython_solvers import line_pcg

RTOL = 1e-9

SHAPES = [(8, 8), (12, 5), (5, 12), (1, 9), (9, 1), (1, 1)]
WIRES = [1e-3, 1.0, 100.0]                       # ohm per segment
G_RANGES = [(1e-8, 1e-6), (1e-6, 1e-4), (1e-5, 1e-3)]  # siemens
PERIPHERY = [(0.0, 0.0), (50.0, 20.0)]           # (r_driver, r_sense), ohm


def make_crossbar(shape, kind, r_wire, g_range, periphery, seed) -> Crossbar:
    m, n = shape
    r_driver, r_sense = periphery
    g_min, g_max = g_range
    return Crossbar.random(
        m, n, r_row=r_wire, r_col=1.7 * r_wire, r_driver=r_driver, r_sense=r_sense,
        g_off=g_min, g_on=g_max, density=0.5 if kind == "binary" else None, seed=seed,
    )


def assert_currents_close(actual: np.ndarray, desired: np.ndarray, rtol: float = RTOL) -> None:
    """Column currents agree column by column to ``rtol`` (relative)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=0.0)


CASES = list(itertools.product(SHAPES, ["random", "binary"], WIRES, G_RANGES, PERIPHERY))


@pytest.mark.parametrize(
    ("shape", "kind", "r_wire", "g_range", "periphery"), CASES,
    ids=[f"{s[0]}x{s[1]}-{k}-r{r:g}-g{g[1]:g}-p{p[0]:g}" for s, k, r, g, p in CASES],
)
def test_matches_reference(shape, kind, r_wire, g_range, periphery):
    seed = CASES.index((shape, kind, r_wire, g_range, periphery))
    xbar = make_crossbar(shape, kind, r_wire, g_range, periphery, seed=seed)
    v = np.random.default_rng(seed).uniform(0.05, 1.0, size=(3, shape[0]))
    fast = solve(xbar, v, backend="nodal")
    ref = solve(xbar, v, backend="reference")
    assert fast.info["method"].startswith("line-preconditioned CG")
    assert_currents_close(fast.column_currents, ref.column_currents)
    scale = np.max(np.abs(ref.row_voltages))
    np.testing.assert_allclose(fast.row_voltages, ref.row_voltages, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(fast.column_voltages, ref.column_voltages, rtol=0,
                               atol=1e-10 * scale)


@pytest.mark.parametrize("shape", [(16, 16), (24, 10), (10, 24)])
def test_mixed_sign_inputs(shape):
    xbar = Crossbar.random(*shape, r_row=2.0, r_col=2.0, r_driver=5.0, r_sense=5.0, seed=3)
    v = np.random.default_rng(4).uniform(-1.0, 1.0, size=(4, shape[0]))
    fast = solve(xbar, v).column_currents
    ref = solve(xbar, v, backend="reference").column_currents
    np.testing.assert_allclose(fast, ref, rtol=0, atol=RTOL * np.max(np.abs(ref)))


def test_lossy_extreme_converges():
    # r·g·N² = 100 · 1e-3 · 24² ≈ 58: strongly lossy lines need more iterations.
    xbar = Crossbar(np.full((24, 24), 1e-3), r_row=100.0, r_col=100.0)
    v = np.linspace(0.1, 1.0, 24)
    fast = solve(xbar, v, coarse=True)
    lines_only = solve(xbar, v)
    ref = solve(xbar, v, backend="reference")
    # 24 nodes span 7.6 decay lengths: the coarse level saves iterations (the automatic
    # choice keeps an array this small on line CG, cheaper per iteration).
    assert lines_only.info["iterations"] > 10
    assert fast.info["iterations"] < lines_only.info["iterations"]
    assert_currents_close(fast.column_currents, ref.column_currents)
    assert_currents_close(lines_only.column_currents, ref.column_currents)


def test_batch_equals_one_by_one_and_threads():
    xbar = Crossbar.random(20, 30, r_row=1.0, r_col=1.0, r_driver=10.0, seed=5)
    v = np.random.default_rng(6).uniform(0.0, 0.3, size=(7, 20))
    batch = solve(xbar, v, threads=2, use_effective=False)
    single_thread = solve(xbar, v, threads=1, use_effective=False)
    np.testing.assert_array_equal(batch.column_currents, single_thread.column_currents)
    for b in range(v.shape[0]):
        one = solve(xbar, v[b])
        assert one.column_currents.shape == (30,)
        np.testing.assert_array_equal(one.column_currents, batch.column_currents[b])
        np.testing.assert_array_equal(one.row_voltages, batch.row_voltages[b])


def test_effective_path_matches_per_vector_path():
    xbar = Crossbar.random(12, 9, r_row=1.5, r_col=0.5, r_driver=3.0, r_sense=2.0, seed=7)
    v = np.random.default_rng(8).uniform(-0.2, 0.2, size=(30, 12))
    direct = solve(xbar, v, use_effective=False)
    via_geff = solve(xbar, v, use_effective=True)
    assert via_geff.info["effective"] is True and direct.info["effective"] is False
    assert "effective conductance" in via_geff.info["method"]
    scale = np.max(np.abs(direct.column_currents))
    np.testing.assert_allclose(via_geff.column_currents, direct.column_currents,
                               rtol=0, atol=RTOL * scale)
    np.testing.assert_allclose(via_geff.row_voltages, direct.row_voltages, rtol=0, atol=1e-12)
    np.testing.assert_allclose(via_geff.column_voltages, direct.column_voltages, rtol=0,
                               atol=1e-12)


def test_effective_path_chosen_automatically_for_large_batches():
    xbar = Crossbar.random(128, 128, r_row=1.0, r_col=1.0, seed=9)
    v = np.random.default_rng(10).uniform(0.0, 0.2, size=(256, 128))
    sol = solve(xbar, v)
    assert sol.info["effective"] is True
    assert sol.info["solves"] == 128
    small = solve(xbar, v[:8])
    assert small.info["effective"] is False
    np.testing.assert_allclose(small.column_currents, sol.column_currents[:8], rtol=RTOL)


def test_ideal_array_is_exact_product():
    g = np.random.default_rng(11).uniform(1e-6, 1e-4, size=(6, 4))
    xbar = Crossbar(g, r_row=0.0, r_col=0.0)
    v = np.random.default_rng(12).uniform(0.0, 1.0, size=(3, 6))
    sol = solve(xbar, v)
    assert "ideal" in sol.info["method"]
    np.testing.assert_array_equal(sol.column_currents, v @ g)


@pytest.mark.parametrize(("r_row", "r_col"), [(0.0, 1.0), (1.0, 0.0)])
def test_zero_ohm_wire_stays_on_the_compiled_kernel(r_row, r_col):
    xbar = Crossbar.random(6, 7, r_row=r_row, r_col=r_col, r_driver=2.0, r_sense=3.0, seed=13)
    v = np.random.default_rng(14).uniform(0.0, 1.0, size=6)
    sol = solve(xbar, v)
    assert "general topology kernel" in sol.info["method"]
    assert_currents_close(sol.column_currents,
                          solve(xbar, v, backend="reference").column_currents)


@pytest.mark.parametrize("shape", [(7, 9), (1, 5), (5, 1)])
@pytest.mark.parametrize(
    "resistances",
    [(0.0, 0.0, 2.0, 5.0), (0.0, 0.0, 2.0, 0.0), (3.0, 4.0, 0.0, 0.0), (3.0, 0.0, 0.0, 0.0)],
)
def test_ideal_rows_or_columns_are_exact(shape, resistances):
    """Ideal rows (columns) are fixed nodes of the general kernel: at most one CG step."""
    r_row, r_driver, r_col, r_sense = resistances
    xbar = Crossbar.random(*shape, r_row=r_row, r_driver=r_driver, r_col=r_col,
                           r_sense=r_sense, g_off=1e-5, g_on=1e-3, seed=25)
    v = np.random.default_rng(26).uniform(-1.0, 1.0, size=(3, shape[0]))
    sol = solve(xbar, v)
    ref = solve(xbar, v, backend="reference")
    assert sol.info["iterations"] <= 1
    scale = np.max(np.abs(ref.column_currents))
    np.testing.assert_allclose(sol.column_currents, ref.column_currents, rtol=0,
                               atol=1e-12 * scale)
    np.testing.assert_allclose(sol.row_voltages, ref.row_voltages, rtol=0, atol=1e-13)
    np.testing.assert_allclose(sol.column_voltages, ref.column_voltages, rtol=0, atol=1e-13)


def test_zero_column_huge_ratio_and_open_cells():
    g = np.random.default_rng(15).choice([1e-3, 1e-12, 0.0], size=(10, 8))
    g[:, 3] = 0.0                      # a column of open cells
    g[4, :] = 0.0                      # a row of open cells
    xbar = Crossbar(g, r_row=0.5, r_col=0.5, r_driver=1.0, r_sense=1.0)
    v = np.random.default_rng(16).uniform(0.1, 1.0, size=(2, 10))
    sol = solve(xbar, v)
    ref = solve(xbar, v, backend="reference")
    assert np.all(np.isfinite(sol.row_voltages)) and np.all(np.isfinite(sol.column_voltages))
    assert np.all(sol.column_currents[:, 3] == 0.0)
    assert_currents_close(sol.column_currents, ref.column_currents)


def test_all_open_array_and_zero_input():
    xbar = Crossbar(np.zeros((5, 5)), r_row=1.0, r_col=1.0)
    sol = solve(xbar, np.ones(5))
    assert np.all(sol.column_currents == 0.0)
    np.testing.assert_allclose(sol.row_voltages, 1.0)
    xbar = Crossbar.random(5, 5, r_row=1.0, r_col=1.0, seed=17)
    sol = solve(xbar, np.zeros(5))
    assert sol.info["iterations"] == 0
    assert np.all(sol.column_currents == 0.0)


def test_kirchhoff_and_power_balance():
    xbar = Crossbar.random(15, 11, r_row=2.0, r_col=3.0, r_driver=7.0, r_sense=4.0, seed=18)
    v = np.random.default_rng(19).uniform(0.0, 0.5, size=15)
    sol = solve(xbar, v)
    # Source current through the driver equals the sum of the row's cell currents.
    i_src = (v - sol.row_voltages[:, 0]) / (xbar.r_driver + xbar.r_row)
    np.testing.assert_allclose(sol.row_currents, i_src, rtol=1e-9)
    # Sense current through the last segment equals the sum of the column's cells.
    i_sense = sol.column_voltages[-1, :] / (xbar.r_col + xbar.r_sense)
    np.testing.assert_allclose(sol.column_currents, i_sense, rtol=1e-9)
    np.testing.assert_allclose(sol.power_delivered, sol.power_dissipated, rtol=1e-9)


def test_convergence_failure_raises_with_residual():
    xbar = Crossbar(np.full((20, 20), 1e-3), r_row=100.0, r_col=100.0)
    with pytest.raises(ConvergenceError) as info:
        solve(xbar, np.ones(20), cg_max_iter=2)
    err = info.value
    assert err.iterations == 2
    assert err.residual > err.tolerance == 1e-12
    assert "cg_max_iter=2" in str(err)


def test_options_are_validated():
    xbar = Crossbar.random(4, 4, r_row=1.0, r_col=1.0, seed=20)
    v = np.ones(4)
    with pytest.raises(BackendError, match="unknown option"):
        solve(xbar, v, tolerance=1e-3)
    for bad in ({"rtol": 0.0}, {"rtol": 2.0}, {"rtol": "x"}, {"cg_max_iter": 0},
                {"threads": 0}, {"threads": 1.5}, {"use_effective": "yes"}):
        with pytest.raises(BackendError):
            solve(xbar, v, **bad)
    loose = solve(xbar, v, rtol=1e-3)
    assert loose.info["rtol"] == 1e-3


def test_non_contiguous_and_other_dtypes_are_converted():
    xbar = Crossbar.random(6, 5, r_row=1.0, r_col=1.0, seed=21)
    base = np.random.default_rng(22).uniform(0.0, 1.0, size=(4, 12))
    strided = base[:, ::2]                                   # non-contiguous (4, 6)
    expected = solve(xbar, np.ascontiguousarray(strided)).column_currents
    np.testing.assert_array_equal(solve(xbar, strided).column_currents, expected)
    np.testing.assert_array_equal(solve(xbar, np.asfortranarray(strided)).column_currents,
                                  expected)
    as32 = strided.astype(np.float32)
    np.testing.assert_allclose(solve(xbar, as32).column_currents,
                               solve(xbar, as32.astype(np.float64)).column_currents, rtol=0)
    ints = solve(xbar, [1, 0, 1, 0, 1, 0]).column_currents
    np.testing.assert_array_equal(ints, solve(xbar, np.array([1.0, 0, 1, 0, 1, 0])).column_currents)
    with pytest.raises(InputError):
        solve(xbar, np.ones(5))
    with pytest.raises(InputError):
        solve(xbar, [np.nan] * 6)


def test_kernel_wrapper_validates():
    xbar = Crossbar.random(4, 3, r_row=1.0, r_col=1.0, seed=23)
    factors = line_pcg.factor(xbar)
    with pytest.raises(ValueError, match="shape"):
        line_pcg.solve(factors, np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        line_pcg.solve(factors, np.full((1, 4), np.inf))
    with pytest.raises(ValueError, match="rtol"):
        line_pcg.solve(factors, np.ones((1, 4)), rtol=0.0)
    with pytest.raises(ValueError, match="threads"):
        line_pcg.solve(factors, np.ones((1, 4)), threads=0)
    with pytest.raises(TypeError):
        line_pcg.solve("not factors", np.ones((1, 4)))
    import dataclasses

    bad = dataclasses.replace(factors, row_e=np.ones((3, 3)))
    with pytest.raises(ValueError, match="row_e"):
        line_pcg.solve(bad, np.ones((1, 4)))
    bad = dataclasses.replace(factors, col_inv=np.asfortranarray(factors.col_inv))
    with pytest.raises(ValueError, match="col_inv"):
        line_pcg.solve(bad, np.ones((1, 4)))
    with pytest.raises(ValueError, match="g_last"):
        line_pcg.solve(dataclasses.replace(factors, g_last=0.0), np.ones((1, 4)))
    with pytest.raises(ValueError, match="r_row > 0"):
        line_pcg.factor(xbar.replace(r_row=0.0))
    with pytest.raises(TypeError):
        line_pcg.factor(np.ones((2, 2)))
    # Fortran-ordered and integer inputs are converted before the kernel sees them.
    out = line_pcg.solve(factors, np.asfortranarray(np.ones((2, 4), dtype=np.int64)))
    assert out.status.tolist() == [1, 1]
    with pytest.raises(ValueError, match="shape"):
        line_pcg.row_voltages_from_columns(factors, np.ones((1, 4)), np.ones((2, 4, 3)))


def test_reciprocity_of_port_solves():
    """Driving column port j gives row currents equal to G_eff's column j."""
    xbar = Crossbar.random(7, 5, r_row=1.0, r_col=2.0, r_driver=3.0, r_sense=4.0, seed=24)
    factors = line_pcg.factor(xbar)
    by_rows = line_pcg.solve(factors, np.eye(7), store=False).column_currents
    by_cols = -line_pcg.solve(factors, None, np.eye(5), store=False).row_currents.T
    np.testing.assert_allclose(by_cols, by_rows, rtol=1e-10)


def _exact_currents(xbar: Crossbar, v: np.ndarray, digits: int = 40) -> np.ndarray:
    """Column currents from a dense nodal solve in ``digits``-digit arithmetic."""
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp.clone() if hasattr(mpmath.mp, "clone") else mpmath.mp
    mp.dps = digits
    m, n = xbar.shape
    size = 2 * m * n
    mpf = mp.mpf
    g_first = 1 / (mpf(xbar.r_row) + mpf(xbar.r_driver))
    g_last = 1 / (mpf(xbar.r_col) + mpf(xbar.r_sense))
    w_row, w_col = 1 / mpf(xbar.r_row), 1 / mpf(xbar.r_col)
    a = mp.matrix(size, size)

    def link(p: int, q: int | None, g) -> None:
        a[p, p] += g
        if q is not None:
            a[q, q] += g
            a[p, q] -= g
            a[q, p] -= g

    b = mp.matrix(size, 1)
    for i in range(m):
        for j in range(n):
            k, kc = i * n + j, m * n + i * n + j
            link(k, kc, mpf(xbar.conductance[i, j]))
            link(k, None if j == 0 else k - 1, g_first if j == 0 else w_row)
            link(kc, None if i == m - 1 else kc + n, g_last if i == m - 1 else w_col)
        b[i * n] = g_first * mpf(v[i])
    x = mp.lu_solve(a, b)
    return np.array([
        float(sum(mpf(xbar.conductance[i, j]) * (x[i * n + j] - x[m * n + i * n + j])
                  for i in range(m)))
        for j in range(n)
    ])


@pytest.mark.parametrize(
    ("r_driver", "r_sense", "r_wire", "g_max"),
    [(1e6, 1e6, 1e-3, 1e-4), (1e6, 0.0, 1e-3, 1e-8), (0.0, 1e6, 1e-3, 1e-3),
     (0.0, 0.0, 100.0, 1e-3)],
)
def test_weakly_grounded_lines_against_extended_precision(r_driver, r_sense, r_wire, g_max):
    """Ill-conditioned lines (mΩ wires behind MΩ periphery) stay accurate.

    Against a 40-digit dense solve both the nodal backend and the ``"reference"``
    graph solver are within 1e-12 here. Plain SuperLU on the Laplacian was only within
    about 3e-7 in the first three cases; the reference's iterative refinement with
    difference-form Kirchhoff residuals recovers the lost digits.
    """
    xbar = Crossbar.random(4, 5, r_row=r_wire, r_col=r_wire, r_driver=r_driver,
                           r_sense=r_sense, g_off=g_max / 100, g_on=g_max, seed=0)
    v = np.random.default_rng(0).uniform(0.1, 1.0, size=4)
    exact = _exact_currents(xbar, v)
    np.testing.assert_allclose(solve(xbar, v).column_currents, exact, rtol=1e-12, atol=0)
    np.testing.assert_allclose(solve(xbar, v, backend="reference").column_currents, exact,
                               rtol=1e-12, atol=0)
