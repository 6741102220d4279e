"""Validated wrapper of the compiled kernel for every crossbar topology (``_structured``).

Every legal :class:`~xbar_circuit.Crossbar` keeps the crossbar structure: row chains,
column chains and one cell between r(i, j) and c(i, j). :func:`orient` turns a spec
into *solver orientation* (rows flipped for sense amplifiers at the top, columns
flipped for drivers on the right) with per-segment couplings in siemens, where a
zero-ohm segment or an ideal source or ground is an infinite conductance. The
kernel handles those infinities by the exact limits of its chain factors
(docs/solver.md), so no spec needs another solver.

:class:`Chains` factors the system for one set of cell conductances ``d`` (the cell
conductances of a linear array, or ``di/dv`` inside Newton) and solves any number of
right-hand sides on a thread pool; :func:`solve_sources` adds iterative refinement on
the true Kirchhoff residual, which carries the accuracy contract of the ``"nodal"``
backend.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import ConvergenceError
from ..spec import Crossbar
from ._pool import chunks, default_max_iter, default_threads, run_chunks
from ._structured import (
    factor,
    group_residual,
    kcl_residual,
    rows_from_columns,
    solve_many,
    source_response,
)

__all__ = [
    "CONTRACT_FLOOR",
    "CONTRACT_RTOL",
    "ChainSolve",
    "Chains",
    "Oriented",
    "check",
    "chunks",
    "default_max_iter",
    "default_threads",
    "STIFFNESS_LIMIT",
    "needs_refinement",
    "stiffness",
    "orient",
    "refine_solution",
    "solve_sources",
]

CONTRACT_RTOL = 1e-9
"""Relative accuracy of every significant column current promised by ``"nodal"``."""

CONTRACT_FLOOR = 1e-12
"""A column is significant when its current is at least this fraction of the largest."""

_REFINE_TOL = 1e-11
"""A refinement step whose column-current change is below this fraction of every
significant column current ends the refinement (the error left is far below the
contract)."""

_REFINE_RTOL = 1e-6
"""CG tolerance of a correction solve: it only has to get the (small) correction to a
few digits."""

_REFINE_MAX = 4


def _inverse(resistance: np.ndarray) -> np.ndarray:
    """Conductances of non-negative resistances; 0 ohm becomes ``+inf`` siemens."""
    with np.errstate(divide="ignore"):
        return np.ascontiguousarray(1.0 / np.asarray(resistance, dtype=np.float64))


@dataclasses.dataclass
class Oriented:
    """An array in solver orientation (columns grounded at the bottom, rows fed at the left).

    Attributes
    ----------
    g : ndarray (M, N)
        Programmed conductances, siemens.
    wr : ndarray (M, N)
        Row couplings r(i, j)-r(i, j+1), siemens, ``inf`` for 0 ohm (last column unused).
    gl, gr : ndarray (M,)
        Conductance from the left / right end node to the row source, siemens
        (``gr = 0`` without a right driver, ``inf`` for an ideal path).
    wc : ndarray (M, N)
        Column couplings c(i, j)-c(i+1, j), siemens, ``inf`` for 0 ohm (last row unused).
    gb : ndarray (N,)
        Conductance from c(M-1, j) to ground through the last segment, ``r_sense`` and
        the port resistance, siemens (``inf`` for an ideal path).
    flip_rows, flip_cols : bool
        Whether rows (top sense) / columns (right drivers) were reversed.
    """

    g: np.ndarray
    wr: np.ndarray
    gl: np.ndarray
    gr: np.ndarray
    wc: np.ndarray
    gb: np.ndarray
    flip_rows: bool
    flip_cols: bool

    def to_solver(self, a: np.ndarray) -> np.ndarray:
        """Reorient a (..., M, N) array from spec to solver orientation (or back)."""
        if self.flip_rows:
            a = a[..., ::-1, :]
        if self.flip_cols:
            a = a[..., ::-1]
        return np.ascontiguousarray(a)

    def rows_to_solver(self, v: np.ndarray) -> np.ndarray:
        """Reorient a (..., M) per-row array (inputs, gate voltages)."""
        return np.ascontiguousarray(v[..., ::-1] if self.flip_rows else v)

    def columns_to_spec(self, a: np.ndarray) -> np.ndarray:
        """Reorient a (..., N) per-column array (column currents) back to the spec."""
        return np.ascontiguousarray(a[..., ::-1] if self.flip_cols else a)


def orient(crossbar: Crossbar) -> Oriented:
    """Return ``crossbar`` in solver orientation with per-segment conductances.

    Parameters
    ----------
    crossbar : Crossbar
        Any legal spec.

    Returns
    -------
    Oriented
        Zero-ohm segments and ideal sources or grounds are ``inf`` siemens.
    """
    if not isinstance(crossbar, Crossbar):
        raise TypeError(f"expected a Crossbar, got {type(crossbar).__name__}")
    m, n = crossbar.shape
    # Views until the final arrays: the segments are broadcast views of the spec's
    # scalars or arrays, and every full-size temporary would cost a fresh allocation.
    seg_r = crossbar.row_segments()
    seg_c = crossbar.col_segments()
    side = crossbar.driver_side
    flip_cols = side == "right"
    flip_rows = crossbar.sense_side == "top"
    g = np.asarray(crossbar.conductance, dtype=np.float64)
    if flip_cols:
        seg_r = seg_r[:, ::-1]
        seg_c = seg_c[:, ::-1]
        g = g[:, ::-1]
    if flip_rows:
        seg_r = seg_r[::-1]
        seg_c = seg_c[::-1]
        g = g[::-1]
    wr = np.empty((m, n))
    wc = np.empty((m, n))
    with np.errstate(divide="ignore"):
        # 0 ohm becomes +inf siemens.
        np.divide(1.0, seg_r[:, 1:n], out=wr[:, : n - 1])
        np.divide(1.0, seg_c[: m - 1], out=wc[: m - 1])
    wr[:, n - 1] = 1.0
    wc[m - 1] = 1.0
    gl = _inverse(crossbar.r_driver + seg_r[:, 0])
    gr = _inverse(crossbar.r_driver + seg_r[:, n]) if side == "both" else np.zeros(m)
    gb = _inverse(seg_c[m - 1] + crossbar.r_sense + crossbar.port_resistance)
    return Oriented(np.ascontiguousarray(g), wr, gl, gr, wc, gb, flip_rows=flip_rows,
                    flip_cols=flip_cols)


@dataclasses.dataclass
class ChainSolve:
    """Result of :meth:`Chains.solve` for B right-hand sides.

    Attributes
    ----------
    row_voltages, column_voltages : ndarray (B, M, N) or None
        Node voltages in solver orientation, volts (None unless stored).
    column_currents : ndarray (B, N)
        ``sum_i d (x_r - x_c)``, amperes (solver orientation).
    iterations : ndarray of int64 (B,)
    residual : ndarray (B,)
        Relative residual of the (reduced) Schur system reached per vector.
    status : ndarray of int8 (B,)
        1 converged, 0 iteration cap, 2 breakdown.
    """

    row_voltages: np.ndarray | None
    column_voltages: np.ndarray | None
    column_currents: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    status: np.ndarray


def _check_array(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = np.ascontiguousarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    return array


class Chains:
    """The factored nodal system of one oriented array for cell conductances ``d``.

    Parameters
    ----------
    oriented : Oriented
        From :func:`orient`.
    d : ndarray (M, N), optional
        Cell conductances in siemens, finite and non-negative (default: ``oriented.g``).
    factored : bool
        Factor the chains now (default). ``False`` builds only the masks and finite
        couplings (what the compiled Newton kernel needs, which factors for itself);
        the chains are then factored for ``oriented.g`` on first use.

    Raises
    ------
    ValueError
        If ``d`` has the wrong shape or is not finite and non-negative, or the
        oriented arrays are inconsistent.
    """

    def __init__(self, oriented: Oriented, d: np.ndarray | None = None, *,
                 factored: bool = True) -> None:
        o = oriented
        m, n = np.shape(o.g)
        if m < 1 or n < 1:
            raise ValueError(f"empty array of shape {(m, n)}")
        self.shape = (m, n)
        self.o = o
        for name, shape in (("g", (m, n)), ("wr", (m, n)), ("wc", (m, n)), ("gl", (m,)),
                            ("gr", (m,)), ("gb", (n,))):
            array = getattr(o, name)
            if (not isinstance(array, np.ndarray) or array.dtype != np.float64
                    or array.shape != shape or not array.flags.c_contiguous):
                raise ValueError(f"oriented.{name} must be a C-contiguous float64 array of "
                                 f"shape {shape}; build it with orient()")
            # min is NaN when any entry is: one pass catches NaN and negatives.
            if not array.min() >= 0.0:
                raise ValueError(f"oriented.{name} must hold conductances >= 0 S")
        if not np.isfinite(o.g.max()):
            raise ValueError("oriented.g must be finite")
        if np.any(o.gl + o.gr <= 0.0) or np.any(o.gb <= 0.0):
            raise ValueError("every row needs a source path and every column a ground path")
        # The masks are bool arrays viewed as uint8 (same size, no copy).
        inf_c = np.isinf(o.wc)
        inf_c[m - 1] = False
        self.link_c = inf_c.view(np.uint8)
        # A column node is fixed at 0 V when a zero-ohm path joins it to an ideal ground:
        # the bottom node of a column with infinite gb and every node linked to it,
        # below[i] = isinf(gb) & inf_c[i] & inf_c[i+1] & ... & inf_c[m-2] (a running AND
        # from the bottom row up). Without an ideal ground no node is fixed.
        ideal_ground = np.isinf(o.gb)
        if ideal_ground.any():
            below = np.logical_and.accumulate(
                np.concatenate([ideal_ground[None, :], inf_c[: m - 1][::-1]], axis=0),
                axis=0)[::-1]
            self.free_c = np.ascontiguousarray(~below).view(np.uint8)
        else:
            self.free_c = np.ones((m, n), dtype=np.uint8)
        inf_r = np.isinf(o.wr)
        inf_r[:, n - 1] = False
        self.link_r = inf_r.view(np.uint8)
        # A row node is fixed at its source voltage when a zero-ohm path joins it to an
        # ideal source at either end (none without an ideal source).
        ideal_left, ideal_right = np.isinf(o.gl), np.isinf(o.gr)
        if ideal_left.any() or ideal_right.any():
            left = np.logical_and.accumulate(
                np.concatenate([ideal_left[:, None], inf_r[:, : n - 1]], axis=1), axis=1)
            right = np.logical_and.accumulate(
                np.concatenate([ideal_right[:, None], inf_r[:, : n - 1][:, ::-1]], axis=1),
                axis=1)[:, ::-1]
            self.free_r = np.ascontiguousarray(~(left | right)).view(np.uint8)
        else:
            self.free_r = np.ones((m, n), dtype=np.uint8)
        wcf = np.where(inf_c, 0.0, o.wc)
        wcf[m - 1] = np.where(np.isinf(o.gb), 0.0, o.gb)
        self.wcf = np.ascontiguousarray(wcf)
        self.d: np.ndarray | None = None
        if factored or d is not None:
            self.refactor(o.g if d is None else d)

    def conductances(self) -> np.ndarray:
        """The cell conductances (M, N), siemens, the chains are factored for (factoring
        them for ``oriented.g`` first if that has not happened yet)."""
        if self.d is None:
            self.refactor(self.o.g)
        assert self.d is not None
        return self.d

    def refactor(self, d: np.ndarray) -> None:
        """Factor the chains again for new cell conductances ``d`` (M, N), siemens.

        Raises
        ------
        ValueError
            If ``d`` has the wrong shape or is not finite and non-negative, or the
            factors are not finite.
        """
        o = self.o
        checked = _check_array("d", d, self.shape)
        # As in __init__: NaN propagates through min and max, so the extremes decide.
        if not (checked.min() >= 0.0 and math.isfinite(float(checked.max()))):
            raise ValueError("cell conductances d must be finite and >= 0 S")
        if self.d is None:
            m, n = self.shape
            self.row_e, self.row_inv, self.col_e, self.col_inv, self.h = (
                np.empty((m, n)) for _ in range(5))
        finite = factor(checked, o.wr, o.gl, o.gr, o.wc, o.gb, self.row_e, self.row_inv,
                        self.col_e, self.col_inv)
        source_response(o.wr, o.gl, o.gr, self.row_e, self.row_inv, self.h)
        # h is NaN-free exactly when its extremes are (NaN propagates through them).
        if finite and math.isfinite(float(self.h.min())) and math.isfinite(
                float(self.h.max())):
            self.d = checked
        else:
            # Unfactored again: a later solve refactors (and raises) instead of using
            # these factors.
            self.d = None
            raise ValueError(
                    "the chain factorization produced non-finite values; the wire and "
                    "cell conductances span too many orders of magnitude for float64")

    def pin(self, x_r: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``x_r`` (M, N) with the nodes fixed by ideal sources set to their voltage ``v``."""
        return np.where(self.free_r.astype(bool), x_r, np.asarray(v)[:, None])

    def solve(self, v_row: np.ndarray | None = None, b_r: np.ndarray | None = None,
              b_c: np.ndarray | None = None, *, store: bool = True, rtol: float = 1e-12,
              max_iter: int | None = None, threads: int | None = None) -> ChainSolve:
        """Solve B right-hand sides (solver orientation).

        Parameters
        ----------
        v_row : array_like (B, M), optional
            Row source voltages, volts.
        b_r, b_c : array_like (B, M, N), optional
            Currents injected into row / column nodes, amperes.
        store : bool
            Return node voltages (else only column currents).
        rtol : float
            Relative tolerance of the Schur residual, in (0, 1).
        max_iter, threads : int, optional
            CG cap per vector, worker threads.

        Returns
        -------
        ChainSolve
        """
        m, n = self.shape
        d = self.conductances()
        given = [a for a in (v_row, b_r, b_c) if a is not None]
        if not given:
            raise ValueError("give v_row, b_r or b_c")
        batch = int(np.shape(given[0])[0])
        if batch < 1:
            raise ValueError("empty batch")
        v = _check_array("v_row", v_row, (batch, m)) if v_row is not None else np.zeros((1, 1))
        br = _check_array("b_r", b_r, (batch, m, n)) if b_r is not None \
            else np.zeros((1, 1, 1))
        bc = _check_array("b_c", b_c, (batch, m, n)) if b_c is not None \
            else np.zeros((1, 1, 1))
        for name, array in (("v_row", v), ("b_r", br), ("b_c", bc)):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must be finite")
        rtol = float(rtol)
        if not (math.isfinite(rtol) and 0.0 < rtol < 1.0):
            raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
        cap = default_max_iter(m, n) if max_iter is None else int(max_iter)
        workers = default_threads() if threads is None else int(threads)
        if cap < 1 or workers < 1:
            raise ValueError("max_iter and threads must be positive")
        x_r = np.empty((batch, m, n)) if store else None
        x_c = np.empty((batch, m, n)) if store else None
        i_col = np.empty((batch, n))
        iterations = np.zeros(batch, dtype=np.int64)
        residual = np.zeros(batch)
        status = np.zeros(batch, dtype=np.int8)

        def run(lo: int, hi: int) -> None:
            work = np.empty((4, m, n))
            out_r = x_r[lo:hi] if x_r is not None else np.empty((1, m, n))
            out_c = x_c[lo:hi] if x_c is not None else np.empty((1, m, n))
            solve_many(d, self.wcf, self.row_e, self.row_inv, self.col_e, self.col_inv,
                       self.h, self.link_c, self.free_c,
                       v[lo:hi] if v_row is not None else v,
                       br[lo:hi] if b_r is not None else br,
                       bc[lo:hi] if b_c is not None else bc,
                       v_row is not None, b_r is not None, b_c is not None,
                       out_r, out_c, store, i_col[lo:hi], iterations[lo:hi],
                       residual[lo:hi], status[lo:hi], rtol, cap, work)

        run_chunks(batch, workers, run)
        return ChainSolve(x_r, x_c, i_col, iterations, residual, status)

    def rows_from_columns(self, v_row: np.ndarray, x_c: np.ndarray,
                          threads: int | None = None) -> np.ndarray:
        """Row voltages ``A_r^{-1} D x_c + V h`` (B, M, N) for known column voltages."""
        m, n = self.shape
        d = self.conductances()
        v = np.ascontiguousarray(v_row, dtype=np.float64)
        xc = np.ascontiguousarray(x_c, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != m or xc.shape != (v.shape[0], m, n):
            raise ValueError(f"expected v_row (B, {m}) and x_c (B, {m}, {n}), got "
                             f"{v.shape} and {xc.shape}")
        out = np.empty_like(xc)

        def run(lo: int, hi: int) -> None:
            rows_from_columns(d, self.row_e, self.row_inv, self.h, v[lo:hi], xc[lo:hi],
                              out[lo:hi])

        run_chunks(v.shape[0], default_threads() if threads is None else threads, run)
        return out

    def residual(self, i_cell: np.ndarray, v: np.ndarray, x_r: np.ndarray,
                 x_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kirchhoff residuals (A) of one state, node by node (difference form).

        Parameters
        ----------
        i_cell : ndarray (M, N)
            Cell currents from row to column node, amperes.
        v : ndarray (M,)
            Row source voltages, volts.
        x_r, x_c : ndarray (M, N)
            Node voltages, volts.
        """
        m, n = self.shape
        o = self.o
        f_r = np.empty((m, n))
        f_c = np.empty((m, n))
        kcl_residual(_check_array("i_cell", i_cell, (m, n)), o.wr, o.gl, o.gr, o.wc, o.gb,
                     _check_array("v", v, (m,)), _check_array("x_r", x_r, (m, n)),
                     _check_array("x_c", x_c, (m, n)), f_r, f_c)
        return f_r, f_c

    def port_currents(self, x_r: np.ndarray, x_c: np.ndarray) -> np.ndarray:
        """Column currents (B, N), amperes, of node voltages (B, M, N), by the kernel's rule.

        The sum of the column's cell currents, or, where that sum cancels (its terms
        1e4 times larger than the result) and the port path is finite, the current
        through the port path (see ``_chains.port_currents``).
        """
        d = self.conductances()
        cells = np.einsum("ij,bij->bj", d, x_r - x_c)
        mag = np.einsum("ij,bij->bj", d, np.abs(x_r)) + np.einsum("ij,bij->bj", d,
                                                                    np.abs(x_c))
        gport = self.wcf[-1]
        use_port = (gport > 0.0) & (mag > 1e4 * np.abs(cells))
        return np.where(use_port, gport * x_c[:, -1, :], cells)

    def grouped(self, f_r: np.ndarray, f_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals of the reduced system: merged nodes summed, fixed nodes zeroed."""
        g_r = _check_array("f_r", f_r, self.shape).copy()
        g_c = _check_array("f_c", f_c, self.shape).copy()
        group_residual(g_r, g_c, self.link_r, self.free_r, self.link_c, self.free_c)
        return g_r, g_c


def _significant(i_col: np.ndarray) -> np.ndarray:
    scale = np.max(np.abs(i_col), axis=-1, keepdims=True)
    return np.abs(i_col) >= CONTRACT_FLOOR * scale


def solve_sources(chains: Chains, v_row: np.ndarray, *, store: bool, rtol: float,
                  max_iter: int | None, threads: int | None, what: str,
                  refine: bool = True) -> tuple[ChainSolve, int]:
    """Solve a linear array for source voltages (solver orientation), then :func:`refine`.

    Returns
    -------
    (ChainSolve, int)
        The solution and the number of refinement steps taken.

    Raises
    ------
    ConvergenceError
        If a CG solve does not converge, or refinement does not reach the contract.
    """
    m, n = chains.shape
    result = chains.solve(v_row, store=store or refine, rtol=rtol, max_iter=max_iter,
                          threads=threads)
    check(result, rtol, max_iter if max_iter is not None else default_max_iter(m, n), what)
    steps = 0
    if refine:
        steps = refine_solution(chains, v_row, result, max_iter=max_iter, threads=threads,
                                what=what)
        if not store:
            result.row_voltages = None
            result.column_voltages = None
    return result, steps


STIFFNESS_LIMIT = 1e4
"""Ratio of the stiffest wire coupling to the weakest source or ground path above which
every solve is refined (milliohm wires behind kilo- or megaohm periphery)."""


def stiffness(o: Oriented) -> float:
    """Largest finite wire conductance over the smallest finite end conductance."""
    def finite_max(a: np.ndarray) -> float:
        # One pass without temporaries unless a zero-ohm (infinite) coupling is present.
        if a.size == 0:
            return -math.inf
        top = float(a.max())
        if math.isfinite(top):
            return top
        return float(a[np.isfinite(a)].max(initial=-math.inf))

    wires = max(finite_max(o.wr[:, :-1]), finite_max(o.wc[:-1]))
    ends = np.concatenate([o.gl, o.gr[o.gr > 0.0], o.gb])
    ends = ends[np.isfinite(ends)]
    if wires == -math.inf or ends.size == 0:
        return 1.0
    return float(wires / ends.min())


def needs_refinement(result: ChainSolve, iterations_limit: int = 150,
                     stiff: float = 1.0) -> bool:
    """Whether a converged CG solve may miss the contract on some column.

    CG stops on the global residual, so a column whose current is small next to the
    largest one, a slowly converging solve, or a system whose wire couplings dwarf its
    source and ground paths (:func:`stiffness` above :data:`STIFFNESS_LIMIT`), can be
    less accurate than the residual suggests; all are checked by
    :func:`refine_solution`.
    """
    i_col = np.abs(result.column_currents)
    scale = i_col.max(axis=1, keepdims=True)
    significant = i_col >= CONTRACT_FLOOR * scale
    smallest = np.where(significant, i_col, np.inf).min(axis=1)
    return bool(np.any(smallest < 1e-3 * scale[:, 0])
                or int(result.iterations.max(initial=0)) > iterations_limit
                or stiff > STIFFNESS_LIMIT)


def refine_solution(chains: Chains, v_row: np.ndarray, result: ChainSolve, *,
                    max_iter: int | None, threads: int | None, what: str) -> int:
    """Iterative refinement on the true Kirchhoff residual, in place; return the steps.

    The residual is formed node by node in difference form (so that its rounding is
    relative to the local currents, not to the largest one) and a correction is solved
    for it, until a correction changes no significant column current (at least
    :data:`CONTRACT_FLOOR` of the largest) by more than ``1e-11`` of its value: the
    column currents are then within :data:`CONTRACT_RTOL` of the exact solution.

    Raises
    ------
    ConvergenceError
        If the contract is not reached within four corrections.
    """
    if result.row_voltages is None or result.column_voltages is None:
        raise ValueError("refinement needs the node voltages (store=True)")
    batch = result.column_currents.shape[0]
    pending = np.arange(batch)
    steps = 0
    while pending.size:
        if steps == _REFINE_MAX:
            raise ConvergenceError(
                f"nodal refinement on the {what} did not reach the accuracy contract "
                f"(column currents to {CONTRACT_RTOL:g} relative) after {steps} correction "
                f"solves for {pending.size} input vector(s); the array is too "
                "ill-conditioned for float64. Use backend='reference'.",
                iterations=steps, residual=float("nan"), tolerance=CONTRACT_RTOL)
        x_r = result.row_voltages[pending]
        x_c = result.column_voltages[pending]
        f_r = np.empty_like(x_r)
        f_c = np.empty_like(x_c)
        for k, b in enumerate(pending):
            f_r[k], f_c[k] = chains.residual(chains.conductances() * (x_r[k] - x_c[k]),
                                             v_row[b], x_r[k], x_c[k])
        corr = chains.solve(None, -f_r, -f_c, store=True, rtol=_REFINE_RTOL,
                            max_iter=max_iter, threads=threads)
        steps += 1
        ok = corr.status == 1
        assert corr.row_voltages is not None and corr.column_voltages is not None
        result.row_voltages[pending[ok]] += corr.row_voltages[ok]
        result.column_voltages[pending[ok]] += corr.column_voltages[ok]
        before = result.column_currents[pending].copy()
        result.column_currents[pending] = chains.port_currents(
            result.row_voltages[pending], result.column_voltages[pending])
        i_col = result.column_currents[pending]
        small = np.abs(i_col - before) <= _REFINE_TOL * np.abs(i_col)
        done = ok & np.all(small | ~_significant(i_col), axis=1)
        if np.any(corr.status == 0):
            raise ConvergenceError(
                f"a correction solve of the refinement on the {what} reached its iteration "
                "cap; the answer could not be brought to the accuracy contract",
                iterations=int(corr.iterations.max()), residual=float(corr.residual.max()),
                tolerance=_REFINE_RTOL)
        # A correction whose CG breaks down (no positive curvature left) is one at
        # rounding level: the state is as accurate as float64 allows.
        done |= corr.status == 2
        pending = pending[~done]
    return steps


def check(result: ChainSolve, rtol: float, max_iter: int, what: str) -> None:
    """Raise :class:`ConvergenceError` unless every vector of ``result`` converged."""
    bad = np.flatnonzero(result.status != 1)
    if bad.size == 0:
        return
    worst = int(bad[np.argmax(np.nan_to_num(result.residual[bad], nan=np.inf))])
    iterations = int(result.iterations[worst])
    residual = float(result.residual[worst])
    if result.status[worst] == 2:
        reason = ("broke down (non-finite or non-positive curvature, the system is too "
                  "ill-conditioned for float64)")
    else:
        reason = f"reached the CG iteration cap cg_max_iter={max_iter}"
    raise ConvergenceError(
        f"nodal CG on the {what} did not converge for {bad.size} of "
        f"{result.status.size} input vector(s): vector {worst} {reason} after "
        f"{iterations} iterations with relative residual {residual:.3e} > rtol={rtol:.1e}. "
        "Raise cg_max_iter, loosen rtol, or use backend='reference'.",
        iterations=iterations, residual=residual, tolerance=rtol,
    )
