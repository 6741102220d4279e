"""The coarse level of the default-circuit solver (coarse-corrected CG, docs/solver.md).

References: the ``"reference"`` backend (SciPy sparse direct solve of the full nodal
system) for answers; an explicitly assembled ``P^T K P`` for the Galerkin operator; the
line-preconditioned kernel for the iteration counts the coarse level must improve on.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xbar_circuit import Crossbar, solve
from xbar_circuit.cython_solvers import deflated, line_pcg

CONTRACT = 1e-9


def _assert_columns(ours: np.ndarray, ref: np.ndarray) -> None:
    scale = np.max(np.abs(ref))
    significant = np.abs(ref) >= 1e-12 * scale
    err = np.abs(ours - ref)
    assert not np.any(significant & (err > CONTRACT * np.abs(ref))), float(
        np.max(np.where(significant, err / np.maximum(np.abs(ref), 1e-300), 0.0)))
    assert np.all(err <= 1e-11 * scale + 1e-300)


def _full_matrix(g: np.ndarray, w_row: float, w_col: float, g_first: float,
                 g_last: float) -> sp.csr_matrix:
    """The default circuit's nodal matrix, assembled element by element."""
    m, n = g.shape
    row = lambda i, j: i * n + j            # noqa: E731
    col = lambda i, j: m * n + i * n + j    # noqa: E731
    entries: dict[tuple[int, int], float] = {}

    def stamp(a: int, b: int | None, value: float) -> None:
        entries[(a, a)] = entries.get((a, a), 0.0) + value
        if b is not None:
            entries[(b, b)] = entries.get((b, b), 0.0) + value
            entries[(a, b)] = entries.get((a, b), 0.0) - value
            entries[(b, a)] = entries.get((b, a), 0.0) - value

    for i in range(m):
        stamp(row(i, 0), None, g_first)
        for j in range(n):
            stamp(row(i, j), col(i, j), g[i, j])
            if j + 1 < n:
                stamp(row(i, j), row(i, j + 1), w_row)
            if i + 1 < m:
                stamp(col(i, j), col(i + 1, j), w_col)
    for j in range(n):
        stamp(col(m - 1, j), None, g_last)
    keys = np.array(list(entries))
    return sp.csr_matrix((list(entries.values()), (keys[:, 0], keys[:, 1])),
                         shape=(2 * m * n, 2 * m * n))


@pytest.mark.parametrize(("shape", "spacing"), [((9, 13), (3, 4)), ((2, 7), (2, 2)),
                                                ((1, 5), (1, 3)), ((6, 1), (2, 1))])
def test_galerkin_operator_equals_the_assembled_product(shape, spacing) -> None:
    """``P^T K P`` built from separable pieces equals the product of assembled matrices."""
    rng = np.random.default_rng(5)
    g = rng.uniform(1e-4, 3e-2, shape)
    w_row, w_col, g_first, g_last = 1.3, 0.7, 0.09, 0.05
    li = deflated.interpolation(shape[0], spacing[0])
    lj = deflated.interpolation(shape[1], spacing[1])
    p_c = sp.kron(li, lj)
    p = sp.block_diag([p_c, p_c])
    expected = (p.T @ _full_matrix(g, w_row, w_col, g_first, g_last) @ p).toarray()
    for threads in (1, 2):
        got = deflated.galerkin_operator(g, spacing, w_row, w_col, g_first, g_last,
                                         threads=threads).toarray()
        np.testing.assert_allclose(got, expected, rtol=1e-13,
                                   atol=1e-15 * np.abs(expected).max())


@pytest.mark.parametrize("length", [1, 2, 5, 64, 65])
@pytest.mark.parametrize("spacing", [1, 2, 7, 100])
def test_interpolation_is_a_partition_of_unity_exact_on_coarse_nodes(length, spacing) -> None:
    lmat = deflated.interpolation(length, spacing).toarray()
    np.testing.assert_allclose(lmat.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert np.all(lmat >= 0.0)
    # Linear functions of the position are reproduced exactly.
    nodes = np.flatnonzero(np.isclose(lmat.max(axis=0), 1.0)) if length > 1 else [0]
    x = np.arange(length, dtype=float)
    coarse_x = np.array([x[np.argmax(lmat[:, k])] for k in range(lmat.shape[1])])
    np.testing.assert_allclose(lmat @ coarse_x, x, atol=1e-12)
    assert len(nodes) == lmat.shape[1]


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 40), n=st.integers(1, 40), log_r=st.floats(-2.0, 1.5),
       log_g=st.floats(-6.0, -0.5), r_driver=st.sampled_from([0.0, 3.0, 50.0]),
       r_sense=st.sampled_from([0.0, 7.0]), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**16))
def test_coarse_corrected_solves_meet_the_contract(m, n, log_r, log_g, r_driver, r_sense,
                                                   threads, seed) -> None:
    """Forced coarse level on any default-circuit array: the reference's column currents
    to 1e-9 and its node voltages to 1e-9 of the largest input."""
    g_hi = 10.0 ** log_g
    xbar = Crossbar.random(m, n, r_row=10.0 ** log_r, r_col=10.0 ** log_r * 0.7,
                           r_driver=r_driver, r_sense=r_sense, g_off=g_hi / 50, g_on=g_hi,
                           seed=seed)
    v = np.random.default_rng(seed + 1).uniform(-0.3, 0.3, (2, m))
    ours = solve(xbar, v, coarse=True, threads=threads)
    ref = solve(xbar, v, backend="reference")
    for b in range(2):
        _assert_columns(ours.column_currents[b], ref.column_currents[b])
    np.testing.assert_allclose(ours.column_voltages, ref.column_voltages, rtol=0,
                               atol=1e-9 * 0.3)
    np.testing.assert_allclose(ours.row_voltages, ref.row_voltages, rtol=0, atol=1e-9 * 0.3)


@pytest.mark.parametrize("threads", [1, 2])
def test_lossy_array_on_the_coarse_path(threads) -> None:
    """A 96x120 array spanning ~30 decay lengths: the coarse path against the reference
    (the automatic choice keeps arrays this small on line CG, whose fixed costs are lower)."""
    xbar = Crossbar.random(96, 120, r_row=1.0, r_col=1.0, r_driver=10.0, r_sense=10.0,
                           g_off=1e-4, g_on=2e-2, seed=2)
    factors = line_pcg.factor(xbar)
    assert not factors.coarse_worthwhile
    v = np.random.default_rng(3).uniform(0.0, 0.2, 96)
    ours = solve(xbar, v, threads=threads, coarse=True)
    ref = solve(xbar, v, backend="reference")
    _assert_columns(ours.column_currents, ref.column_currents)


def test_automatic_choice_of_the_coarse_path() -> None:
    """Large arrays spanning many decay lengths take the coarse path; short or small ones
    do not (the rule, independent of any solve)."""
    g = np.full((4, 4), 1e-2)                        # λ = sqrt(1 / 1e-2) = 10 nodes
    assert deflated.worthwhile((600, 600), g, 1.0, 1.0)        # 60 lengths, 360k cells
    assert not deflated.worthwhile((600, 600), g, 1e3, 1e3)    # λ = 316: 1.9 lengths
    assert not deflated.worthwhile((200, 200), g, 1.0, 1.0)    # 20 lengths, 40k cells


def test_iterations_stop_growing_with_the_number_of_decay_lengths() -> None:
    """Line-preconditioned CG needs iterations growing with N/λ; with the coarse level
    they stay within twice those of an array spanning under two decay lengths.

    Arrays of N = 192 nodes with cell conductances chosen so that N/λ = 1.5, 12, 48
    (λ = sqrt(w / mean G) nodes) stand for 256x256 up to about 8192x8192 of the
    benchmark circuit.
    """
    n = 192
    v = np.random.default_rng(1).uniform(0.0, 0.2, (1, n))

    def iterations(lengths: float, coarse: bool) -> int:
        mean_g = (lengths / n) ** 2           # w = 1 S, λ = n / lengths
        xbar = Crossbar.random(n, n, r_row=1.0, r_col=1.0, r_driver=10.0, r_sense=10.0,
                               g_off=0.02 * mean_g, g_on=1.98 * mean_g, seed=0)
        result = line_pcg.solve(line_pcg.factor(xbar), v, coarse=coarse, threads=1)
        assert result.status[0] == 1
        return int(result.iterations[0])

    short = iterations(1.5, False)
    line = [iterations(k, False) for k in (12.0, 48.0)]
    with_coarse = [iterations(k, True) for k in (12.0, 48.0)]
    assert line[1] > 4 * short                       # the growth the coarse level removes
    assert max(with_coarse) <= 2 * short, (short, line, with_coarse)


def test_threads_share_one_solve_and_agree() -> None:
    xbar = Crossbar.random(64, 80, r_row=1.0, r_col=1.0, g_off=1e-3, g_on=5e-2, seed=9)
    factors = line_pcg.factor(xbar)
    v = np.random.default_rng(4).uniform(0.0, 0.2, (1, 64))
    one = line_pcg.solve(factors, v, coarse=True, threads=1)
    two = line_pcg.solve(factors, v, coarse=True, threads=2)
    np.testing.assert_allclose(two.column_currents, one.column_currents, rtol=1e-11)
    assert abs(int(two.iterations[0]) - int(one.iterations[0])) <= 1


def test_coarse_entry_point_refuses_mismatched_arrays() -> None:
    """The coarse solver's compiled phases never see arrays that do not match."""
    factors = line_pcg.factor(Crossbar.random(6, 5, r_row=1.0, r_col=1.0, seed=0))
    other = line_pcg.factor(Crossbar.random(7, 5, r_row=1.0, r_col=1.0, seed=0))
    good = dict(v_row=np.zeros(6), v_col=np.zeros(5), rtol=1e-12, max_iter=50, threads=1,
                row_v=np.empty((6, 5)), col_v=np.empty((6, 5)), i_col=np.empty(5),
                i_row=np.empty(6))
    deflated.solve_one(factors, factors.coarse, **good)
    with pytest.raises(ValueError, match="CoarseGrid of this 6x5"):
        deflated.solve_one(factors, other.coarse, **good)
    for name, bad in (("v_row", np.zeros(7)), ("row_v", np.empty((5, 6))),
                      ("col_v", np.empty((6, 5), dtype=np.float32)),
                      ("i_col", np.empty(10)[::2]), ("v_col", np.full(5, np.nan))):
        with pytest.raises(ValueError, match=name):
            deflated.solve_one(factors, factors.coarse, **{**good, name: bad})
