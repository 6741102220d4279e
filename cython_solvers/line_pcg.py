"""Validated wrapper around the compiled line-preconditioned CG kernel (``_line_pcg``).

Everything the kernel trusts is checked here: the crossbar has finite, positive wire
resistances, every array is C-contiguous float64 of the right shape, tolerances and
caps are sane. Batches are split into chunks solved by a thread pool (the kernel
releases the GIL), each chunk with its own scratch memory.

The method (see ``docs/solver.md``): conjugate gradients on the column-node Schur
complement ``S = A_c - D A_r^{-1} D`` preconditioned by the column chains ``A_c``,
with every row and column chain factored once (LDL^T) and reused for every
iteration and every input vector. Memory is O(M·N) per thread.
"""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .._validate import check_int
from ..spec import Crossbar
from ._line_pcg import factor_lines, rows_from_columns, solve_lines
from ._pool import default_max_iter, default_threads, run_chunks

__all__ = [
    "LineFactors",
    "LineSolveResult",
    "default_max_iter",
    "default_threads",
    "factor",
    "row_voltages_from_columns",
    "solve",
]


PARALLEL_FACTOR_CELLS = 512 * 512
"""From this many cells the row and column chains are factored on two threads."""


@dataclasses.dataclass(frozen=True)
class LineFactors:
    """The factored row and column chains of one crossbar (reusable for any input).

    Attributes
    ----------
    conductance : ndarray, shape (M, N)
        Cell conductances in siemens (C-contiguous float64, read-only).
    row_e, row_inv, col_e, col_inv : ndarray, shape (M, N)
        LDL^T factors of the row chains (couplings ``w_row/d``, inverse pivots in
        ohms) and of the column chains.
    w_col, g_first, g_last : float
        ``1/r_col``; ``1/(r_driver + r_row)`` from a row source to r(i, 0);
        ``1/(r_col + r_sense)`` from c(M-1, j) to the virtual ground; siemens.
    w_row : float
        ``1/r_row``, siemens.
    """

    conductance: np.ndarray
    row_e: np.ndarray
    row_inv: np.ndarray
    col_e: np.ndarray
    col_inv: np.ndarray
    w_col: float
    g_first: float
    g_last: float
    w_row: float
    _coarse: Any = dataclasses.field(default=None, compare=False, repr=False)
    _coarse_worthwhile: bool | None = dataclasses.field(default=None, compare=False,
                                                        repr=False)

    @property
    def coarse(self) -> Any:
        """The coarse level (:class:`.deflated.CoarseGrid`), built on first use."""
        if self._coarse is None:
            from .deflated import coarse_grid

            object.__setattr__(self, "_coarse", coarse_grid(
                self.conductance, self.w_row, self.w_col, self.g_first, self.g_last,
                threads=default_threads()))
        return self._coarse

    @property
    def coarse_worthwhile(self) -> bool:
        """Whether coarse-corrected CG pays off for this array (see :mod:`.deflated`);
        decided once per factorization, not per solve."""
        if self._coarse_worthwhile is None:
            from .deflated import worthwhile

            object.__setattr__(self, "_coarse_worthwhile", worthwhile(
                self.shape, self.conductance, self.w_row, self.w_col))
        return bool(self._coarse_worthwhile)

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)`` of the factored array."""
        return self.conductance.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Memory held by the factors, in bytes (5 M·N doubles)."""
        return 5 * self.conductance.nbytes


@dataclasses.dataclass
class LineSolveResult:
    """Output of :func:`solve` for a batch of B right-hand sides.

    Attributes
    ----------
    row_voltages, column_voltages : ndarray, shape (B, M, N) or None
        Node voltages in volts (None when not stored).
    column_currents : ndarray, shape (B, N)
        Σ_i G[i, j] (V_r − V_c): current from column j into its port, amperes.
    row_currents : ndarray, shape (B, M)
        Σ_j G[i, j] (V_r − V_c): current delivered into the array by row i, amperes.
    iterations : ndarray of int64, shape (B,)
        CG iterations per vector.
    residual : ndarray, shape (B,)
        Relative residual ‖f − S x_c‖ / ‖f‖ reached per vector (dimensionless).
    status : ndarray of int8, shape (B,)
        1 converged, 0 stopped at the iteration cap, 2 breakdown (non-finite values).
    """

    row_voltages: np.ndarray | None
    column_voltages: np.ndarray | None
    column_currents: np.ndarray
    row_currents: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    status: np.ndarray


def factor(crossbar: Crossbar) -> LineFactors:
    """Factor the row and column chains of ``crossbar`` (O(M·N) time and memory).

    Parameters
    ----------
    crossbar : Crossbar
        A spec with ``r_row > 0`` and ``r_col > 0``.

    Returns
    -------
    LineFactors

    Raises
    ------
    TypeError
        If ``crossbar`` is not a :class:`~xbar_circuit.Crossbar`.
    ValueError
        If ``r_row`` or ``r_col`` is zero (the structured system cannot express a
        zero-ohm wire segment) or a derived conductance is not finite.
    """
    if not isinstance(crossbar, Crossbar):
        raise TypeError(f"expected a Crossbar, got {type(crossbar).__name__}")
    if not crossbar.is_default_topology:
        raise ValueError(
            "line_pcg.factor handles only the default circuit (linear cells, left drivers, "
            "bottom ideal TIAs, scalar wires); variants are solved by "
            "xbar_circuit.cython_solvers.newton (backend 'nodal' routes them there)")
    if not crossbar.r_row > 0.0 or not crossbar.r_col > 0.0:
        raise ValueError(
            "the line solver needs r_row > 0 and r_col > 0, got "
            f"r_row={crossbar.r_row!r} ohm, r_col={crossbar.r_col!r} ohm"
        )
    w_row = 1.0 / crossbar.r_row
    w_col = 1.0 / crossbar.r_col
    g_first = 1.0 / (crossbar.r_row + crossbar.r_driver)
    g_last = 1.0 / (crossbar.r_col + crossbar.r_sense)
    for name, value in (("1/r_row", w_row), ("1/r_col", w_col)):
        if not math.isfinite(value):
            raise ValueError(f"{name} = {value!r} S is not finite (resistance too small)")
    g = np.ascontiguousarray(crossbar.conductance, dtype=np.float64)
    m, n = g.shape
    row_e = np.empty((m, n))
    row_inv = np.empty((m, n))
    col_e = np.empty((m, n))
    col_inv = np.empty((m, n))
    if m * n >= PARALLEL_FACTOR_CELLS and default_threads() > 1:
        # Row and column chains are independent: one thread each.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(factor_lines, g, w_row, w_col, g_first, g_last, row_e,
                                   row_inv, col_e, col_inv, which) for which in (1, 2)]
            finite = all([future.result() for future in futures])
    else:
        finite = factor_lines(g, w_row, w_col, g_first, g_last, row_e, row_inv, col_e,
                              col_inv)
    if not finite:
        raise ValueError(
            "the chain factorization produced non-finite values; the wire and cell "
            "conductances span too many orders of magnitude for float64"
        )
    for array in (row_e, row_inv, col_e, col_inv):
        array.setflags(write=False)
    return LineFactors(g, row_e, row_inv, col_e, col_inv, w_col, g_first, g_last, w_row)


def _check_factors(factors: LineFactors) -> tuple[int, int]:
    """Check what the kernel trusts about ``factors``; return ``(M, N)``."""
    if not isinstance(factors, LineFactors):
        raise TypeError(f"expected LineFactors, got {type(factors).__name__}")
    shape = np.shape(factors.conductance)
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"factors.conductance must be a non-empty (M, N) array, got {shape}")
    for name in ("conductance", "row_e", "row_inv", "col_e", "col_inv"):
        array = getattr(factors, name)
        if (not isinstance(array, np.ndarray) or array.dtype != np.float64
                or array.shape != shape or not array.flags.c_contiguous):
            raise ValueError(
                f"factors.{name} must be a C-contiguous float64 array of shape {shape}; "
                "build LineFactors with factor()"
            )
    for name in ("w_col", "g_first", "g_last"):
        value = getattr(factors, name)
        if not (isinstance(value, float) and math.isfinite(value) and value > 0.0):
            raise ValueError(f"factors.{name} must be a finite float > 0 S, got {value!r}")
    return int(shape[0]), int(shape[1])


def _as_batch(name: str, value: np.ndarray | None, batch: int | None, width: int) -> np.ndarray:
    """Return ``value`` as a C-contiguous finite float64 (B, width) array."""
    if value is None:
        if batch is None:
            raise ValueError(f"{name}: the batch size is unknown")
        return np.zeros((batch, width))
    array = np.ascontiguousarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name} must have shape (B, {width}), got {array.shape}")
    if batch is not None and array.shape[0] != batch:
        raise ValueError(f"{name} has {array.shape[0]} vectors, expected {batch}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _check_options(rtol: float, max_iter: int, threads: int) -> tuple[float, int, int]:
    rtol = float(rtol)
    if not (math.isfinite(rtol) and 0.0 < rtol < 1.0):
        raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
    return (rtol, check_int("max_iter", max_iter, 1, 2**31 - 1),
            check_int("threads", threads, 1, 2**31 - 1))


def solve(
    factors: LineFactors,
    v_row: np.ndarray | None,
    v_col: np.ndarray | None = None,
    *,
    store: bool = True,
    store_rows: bool | None = None,
    rtol: float = 1e-12,
    max_iter: int | None = None,
    threads: int | None = None,
    coarse: bool | None = None,
) -> LineSolveResult:
    """Solve the crossbar for a batch of row-source and column-port voltages.

    Parameters
    ----------
    factors : LineFactors
        From :func:`factor`.
    v_row : array_like, shape (B, M), or None
        Row source voltages in volts (None: all zero).
    v_col : array_like, shape (B, N), or None
        Voltages applied at the column ports behind ``r_sense``, in volts (None: all
        zero, the normal read into virtual grounds). Used for reciprocity solves.
    store : bool
        Return node voltages (B·M·N doubles each) or only port currents.
    store_rows : bool, optional
        With ``store``, whether to return the row voltages too (default: yes);
        ``False`` returns only the column voltages.
    rtol : float
        Relative tolerance on the Schur-complement residual, in (0, 1).
    max_iter : int, optional
        Iteration cap per vector (default :func:`default_max_iter`).
    threads : int, optional
        Worker threads over the batch (default :func:`default_threads`). A batch
        smaller than ``threads`` solved with the coarse level shares each vector's
        work between the threads instead.
    coarse : bool, optional
        Coarse-corrected CG (:mod:`.deflated`): ``None`` (default) when the array
        spans enough decay lengths for it to pay off, else as given.

    Returns
    -------
    LineSolveResult
        The caller decides what to do with vectors whose ``status`` is not 1.
    """
    m, n = _check_factors(factors)
    if v_row is None and v_col is None:
        raise ValueError("give v_row, v_col or both")
    v_row_arr = _as_batch("v_row", v_row, None, m) if v_row is not None else None
    batch = v_row_arr.shape[0] if v_row_arr is not None else None
    v_col_arr = _as_batch("v_col", v_col, batch, n)
    batch = v_col_arr.shape[0]
    if v_row_arr is None:
        v_row_arr = np.zeros((batch, m))
    if batch < 1:
        raise ValueError("empty batch")
    rtol, max_iter, threads = _check_options(
        rtol,
        default_max_iter(m, n) if max_iter is None else max_iter,
        default_threads() if threads is None else threads,
    )
    keep_rows = bool(store) and (store_rows is None or bool(store_rows))
    keep_cols = bool(store)
    row_v = np.empty((batch, m, n)) if keep_rows else None
    col_v = np.empty((batch, m, n)) if keep_cols else None
    i_col = np.empty((batch, n))
    i_row = np.empty((batch, m))
    iterations = np.zeros(batch, dtype=np.int64)
    residual = np.zeros(batch)
    status = np.zeros(batch, dtype=np.int8)

    use_coarse = factors.coarse_worthwhile if coarse is None else bool(coarse)
    if use_coarse:
        from .deflated import solve_one

        grid = factors.coarse
        inner = threads if batch < threads else 1

        def run_coarse(lo: int, hi: int) -> None:
            none = np.empty((0, 0))
            scratch_r = np.empty((m, n)) if row_v is None else none
            scratch_c = np.empty((m, n)) if col_v is None else none
            for b in range(lo, hi):
                its, res, st = solve_one(
                    factors, grid, v_row_arr[b], v_col_arr[b], rtol, max_iter, inner,
                    row_v[b] if row_v is not None else scratch_r,
                    col_v[b] if col_v is not None else scratch_c,
                    i_col[b], i_row[b])
                iterations[b], residual[b], status[b] = its, res, st

        if inner > 1:
            run_coarse(0, batch)
        else:
            run_chunks(batch, threads, run_coarse)
        return LineSolveResult(row_v, col_v, i_col, i_row, iterations, residual, status)

    def run(lo: int, hi: int) -> None:
        work = np.empty((4, m, n))
        out_r = row_v[lo:hi] if row_v is not None else np.empty((1, m, n))
        out_c = col_v[lo:hi] if col_v is not None else np.empty((1, m, n))
        solve_lines(
            factors.conductance, factors.row_e, factors.row_inv, factors.col_e,
            factors.col_inv, factors.w_col, factors.g_first, factors.g_last,
            v_row_arr[lo:hi], v_col_arr[lo:hi], out_r, out_c, keep_rows, keep_cols,
            i_col[lo:hi], i_row[lo:hi], iterations[lo:hi], residual[lo:hi], status[lo:hi],
            rtol, max_iter, work,
        )

    run_chunks(batch, threads, run)
    return LineSolveResult(row_v, col_v, i_col, i_row, iterations, residual, status)


def row_voltages_from_columns(
    factors: LineFactors, v_row: np.ndarray, column_voltages: np.ndarray,
    threads: int | None = None,
) -> np.ndarray:
    """Row node voltages ``x_r = A_r^{-1} (b_r + D x_c)`` from known column voltages.

    Parameters
    ----------
    factors : LineFactors
    v_row : array_like, shape (B, M)
        Row source voltages in volts.
    column_voltages : array_like, shape (B, M, N)
        Column node voltages in volts.
    threads : int, optional
        Worker threads (default :func:`default_threads`).

    Returns
    -------
    ndarray, shape (B, M, N)
        Row node voltages in volts.
    """
    m, n = _check_factors(factors)
    v = _as_batch("v_row", v_row, None, m)
    xc = np.ascontiguousarray(column_voltages, dtype=np.float64)
    if xc.shape != (v.shape[0], m, n):
        raise ValueError(f"column_voltages must have shape {(v.shape[0], m, n)}, got {xc.shape}")
    _, _, threads = _check_options(0.5, 1, default_threads() if threads is None else threads)
    out = np.empty_like(xc)

    def run(lo: int, hi: int) -> None:
        rows_from_columns(factors.conductance, factors.row_e, factors.row_inv,
                          factors.g_first, v[lo:hi], xc[lo:hi], out[lo:hi])

    run_chunks(v.shape[0], threads, run)
    return out
