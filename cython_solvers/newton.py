"""Validated driver of the general compiled solver: variant topologies and Newton-Raphson.

Every variant of :class:`~xbar_circuit.Crossbar` (device models, drivers on the
right or both ends, sense amplifiers at the top, finite-gain TIA or sense load,
per-segment wires) keeps the crossbar structure: row chains, column chains and one
cell between r(i, j) and c(i, j). The array is first *oriented* (rows flipped for
top sense amplifiers, columns flipped for right-hand drivers) so that every column
is grounded at its bottom and every row at its left end (and, for drivers on both
ends, also at its right end); the compiled kernel
(:mod:`xbar_circuit.cython_solvers._newton_pcg`) then solves the linear system with
per-segment couplings and a general right-hand side by line-preconditioned CG.

Nonlinear cells: Newton-Raphson on the nodal equations ``F(x) = 0`` (KCL at the
2·M·N wire nodes). Each iteration evaluates every cell's ``i`` and ``di/dv``
(compiled, series composites by an inner 1-D Newton), solves ``J dx = -F`` with the
kernel (``J`` has the crossbar structure with ``D = di/dv``) and takes the step with
a backtracking line search on ``‖F‖₂``. If plain damped Newton fails: gmin stepping
(a conductance ``gmin`` across every cell, 1e-2 S down to 0 in decades), then source
stepping (inputs ramped from 5 % to 100 %); if everything fails,
:class:`~xbar_circuit.errors.ConvergenceError` states the last residual.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..devices import AccessTransistor, Linear, OneS1R, OneT1R, Selector, Sinh
from ..errors import ConvergenceError
from ..spec import Crossbar
from ._newton_pcg import eval_cells, factor_general, solve_general

__all__ = ["NEWTON_TOL", "Oriented", "orient", "solve_variant"]

NEWTON_TOL = 1e-12
"""Newton stops after a step whose largest node update is below ``NEWTON_TOL`` times the
largest input voltage (the step is applied: the error left is quadratic in it)."""

_GMIN_STEPS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 0.0)
_SOURCE_STEPS = tuple(float(x) for x in np.linspace(0.05, 1.0, 20))
_LOOSE = 1e-4  # step tolerance (x max|V_in|) of intermediate continuation stages


@dataclasses.dataclass
class Oriented:
    """The array in solver orientation (columns grounded at the bottom, rows at the left).

    Attributes
    ----------
    g : ndarray (M, N)
        Programmed conductances, siemens.
    wr : ndarray (M, N)
        Row couplings r(i,j)-r(i,j+1), siemens (last column unused, 1.0).
    gl, gr : ndarray (M,)
        Conductance from the left / right end node to the row source (gr = 0 when
        there is no right driver), siemens.
    wc : ndarray (M, N)
        Column couplings c(i,j)-c(i+1,j), siemens (last row unused, 1.0).
    gb : ndarray (N,)
        Conductance from c(M-1, j) to ground through the last segment, r_sense and the
        port resistance, siemens.
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


def orient(crossbar: Crossbar) -> Oriented | None:
    """Return the oriented conductances, or None when a wire segment is zero ohm.

    The structured system cannot express a zero-ohm segment (merged nodes); callers
    then use the graph solver.
    """
    m, n = crossbar.shape
    seg_r = np.array(crossbar.row_segments(), dtype=np.float64)
    seg_c = np.array(crossbar.col_segments(), dtype=np.float64)
    if np.any(seg_r <= 0.0) or np.any(seg_c <= 0.0):
        return None
    side = crossbar.driver_side
    flip_cols = side == "right"
    flip_rows = crossbar.sense_side == "top"
    g = crossbar.conductance
    if flip_cols:
        seg_r = seg_r[:, ::-1]
        g = g[:, ::-1]
    if flip_rows:
        seg_r = seg_r[::-1]
        seg_c = seg_c[::-1]
        g = g[::-1]
    wr = np.ones((m, n))
    wr[:, : n - 1] = 1.0 / seg_r[:, 1:n]
    gl = 1.0 / (crossbar.r_driver + seg_r[:, 0])
    gr = 1.0 / (crossbar.r_driver + seg_r[:, n]) if side == "both" else np.zeros(m)
    wc = np.ones((m, n))
    wc[: m - 1] = 1.0 / seg_c[: m - 1]
    gb = 1.0 / (seg_c[m - 1] + crossbar.r_sense + crossbar.port_resistance)
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (g, wr, gl, gr, wc, gb)]
    for a in arrays:
        if not np.all(np.isfinite(a)):
            return None
    return Oriented(*arrays, flip_rows=flip_rows, flip_cols=flip_cols)


def _device_codes(device: Any) -> tuple[int, float, float, int, float]:
    """(first_kind, a, b, mem_kind, k) for :func:`eval_cells`."""
    memory = device.memory if isinstance(device, (OneS1R, OneT1R)) else device
    if isinstance(memory, Linear):
        mem_kind, k = 0, 1.0
    elif isinstance(memory, Sinh):
        mem_kind, k = 1, memory.k
    else:  # pragma: no cover - the spec rejects other memories
        raise TypeError(f"unsupported memory element {memory!r}")
    if isinstance(device, OneS1R):
        sel: Selector = device.selector
        return 1, sel.i_0, sel.v_0, mem_kind, k
    if isinstance(device, OneT1R):
        tr: AccessTransistor = device.transistor
        return 2, tr.v_th, tr.k_n, mem_kind, k
    return 0, 0.0, 1.0, mem_kind, k


class _System:
    """One oriented array with its device: residuals, Jacobians and linear solves."""

    def __init__(self, o: Oriented, crossbar: Crossbar, gates: np.ndarray,
                 rtol: float, max_iter: int) -> None:
        self.o = o
        self.m, self.n = o.g.shape
        self.codes = _device_codes(crossbar.device)
        self.gates = np.ascontiguousarray(gates[::-1] if o.flip_rows else gates)
        self.rtol = rtol
        self.max_iter = max_iter
        shape = (self.m, self.n)
        self.factors = [np.empty(shape) for _ in range(4)]
        self.work = np.empty((4, self.m, self.n))
        self.cg_iterations = 0
        self.gmin = 0.0

    def cells(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.empty_like(v)
        d = np.empty_like(v)
        first, a, b, mem, k = self.codes
        eval_cells(first, a, b, mem, k, self.o.g, np.ascontiguousarray(v), self.gates, i, d,
                   200)
        if self.gmin:
            i += self.gmin * v
            d += self.gmin
        return i, d

    def linear_solve(self, d: np.ndarray, b_r: np.ndarray, b_c: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        o = self.o
        factor_general(d, o.wr, o.gl, o.gr, o.wc, o.gb, *self.factors)
        x_r = np.empty((self.m, self.n))
        x_c = np.empty((self.m, self.n))
        status, its, res = solve_general(d, o.wc, o.gb, *self.factors,
                                         np.ascontiguousarray(b_r), np.ascontiguousarray(b_c),
                                         x_r, x_c, self.rtol, self.max_iter, self.work)
        self.cg_iterations += its
        if status != 1:
            reason = "reached the iteration cap" if status == 0 else "broke down"
            raise ConvergenceError(
                f"nodal CG inside the variant solver {reason} after {its} iterations with "
                f"relative residual {res:.3e} > rtol={self.rtol:.1e}",
                iterations=int(its), residual=float(res), tolerance=self.rtol)
        return x_r, x_c

    def source_rhs(self, v: np.ndarray) -> np.ndarray:
        b_r = np.zeros((self.m, self.n))
        b_r[:, 0] += self.o.gl * v
        b_r[:, -1] += self.o.gr * v
        return b_r

    def residual(self, x_r: np.ndarray, x_c: np.ndarray, v: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """KCL residuals (A) at row and column nodes, and di/dv of the cells (S)."""
        o = self.o
        i, d = self.cells(x_r - x_c)
        f_r = i.copy()
        f_r[:, 0] += o.gl * (x_r[:, 0] - v)
        f_r[:, -1] += o.gr * (x_r[:, -1] - v)
        if self.n > 1:
            flow = o.wr[:, :-1] * (x_r[:, :-1] - x_r[:, 1:])
            f_r[:, :-1] += flow
            f_r[:, 1:] -= flow
        f_c = -i
        f_c[-1] += o.gb * x_c[-1]
        if self.m > 1:
            flow = o.wc[:-1] * (x_c[:-1] - x_c[1:])
            f_c[:-1] += flow
            f_c[1:] -= flow
        return f_r, f_c, d


def _newton(system: _System, x_r: np.ndarray, x_c: np.ndarray, v: np.ndarray,
            cap: int, tol: float = NEWTON_TOL
            ) -> tuple[np.ndarray, np.ndarray, int, bool, float]:
    """Damped Newton; overflowing trial steps are rejected quietly (see :func:`_damped`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _damped(system, x_r, x_c, v, cap, tol)


def _damped(system: _System, x_r: np.ndarray, x_c: np.ndarray, v: np.ndarray,
            cap: int, tol: float = NEWTON_TOL
            ) -> tuple[np.ndarray, np.ndarray, int, bool, float]:
    """Damped Newton from (x_r, x_c); return (x_r, x_c, iterations, converged, residual).

    Converged after a step below ``tol`` times the largest input voltage (intermediate
    continuation stages use a loose ``tol``, the final one :data:`NEWTON_TOL`).
    """
    vmax = max(float(np.abs(v).max()), 1e-30)
    f_r, f_c, d = system.residual(x_r, x_c, v)
    norm = math.hypot(np.linalg.norm(f_r), np.linalg.norm(f_c))
    for it in range(1, cap + 1):
        if not math.isfinite(norm):
            return x_r, x_c, it, False, norm
        try:
            d_r, d_c = system.linear_solve(d, -f_r, -f_c)
        except ConvergenceError:  # the Newton system itself is too ill-conditioned:
            return x_r, x_c, it, False, norm  # let gmin / source stepping take over
        step = max(float(np.abs(d_r).max()), float(np.abs(d_c).max()))
        if step <= tol * vmax:
            x_r, x_c = x_r + d_r, x_c + d_c
            f_r, f_c, d = system.residual(x_r, x_c, v)
            return x_r, x_c, it, True, float(max(np.abs(f_r).max(), np.abs(f_c).max()))
        t = 1.0
        while True:
            n_r, n_c = x_r + t * d_r, x_c + t * d_c
            g_r, g_c, g_d = system.residual(n_r, n_c, v)
            new_norm = math.hypot(np.linalg.norm(g_r), np.linalg.norm(g_c))
            if (math.isfinite(new_norm) and new_norm <= norm * (1.0 + 1e-6)) or t < 1e-4:
                break
            t *= 0.5
        x_r, x_c, f_r, f_c, d, norm = n_r, n_c, g_r, g_c, g_d, new_norm
    return x_r, x_c, cap, False, float(max(np.abs(f_r).max(), np.abs(f_c).max()))


def solve_variant(crossbar: Crossbar, o: Oriented, v_in: np.ndarray,
                  gates: np.ndarray | None, *, rtol: float, max_iter: int,
                  newton_max_iter: int) -> dict[str, Any]:
    """Solve a batch on a variant topology (linear: one solve; nonlinear: Newton).

    Parameters
    ----------
    crossbar : Crossbar
    o : Oriented
        From :func:`orient`.
    v_in : ndarray (B, M)
        Source voltages in volts.
    gates : ndarray (M,) or None
        Gate voltages of gated cells, volts.
    rtol, max_iter : float, int
        CG tolerance and cap of each linear solve.
    newton_max_iter : int
        Newton iteration cap of each attempt (plain, and each gmin / source step).

    Returns
    -------
    dict
        ``row_voltages``, ``column_voltages`` (B, M, N) volts, ``column_currents``
        (B, N) amperes, ``newton_iterations`` (B,), ``strategy`` (list of str),
        ``cg_iterations`` (int).

    Raises
    ------
    ConvergenceError
        When damped Newton, gmin stepping and source stepping all fail.
    """
    m, n = crossbar.shape
    batch = v_in.shape[0]
    gate_arr = np.zeros(m) if gates is None else np.asarray(gates, float)
    system = _System(o, crossbar, gate_arr, rtol, max_iter)
    if o.flip_rows:
        v_in = v_in[:, ::-1]
    row_v = np.empty((batch, m, n))
    col_v = np.empty((batch, m, n))
    col_i = np.empty((batch, n))
    newton_its = np.zeros(batch, dtype=np.int64)
    strategies: list[str] = []
    linear = crossbar.is_linear
    zero = np.zeros((m, n))
    for b in range(batch):
        v = np.ascontiguousarray(v_in[b])
        d0 = system.cells(zero)[1]
        x_r, x_c = system.linear_solve(d0, system.source_rhs(v), np.zeros((m, n)))
        total = 0
        strategy = "linear"
        if not linear:
            strategy = "newton"
            start_r, start_c = x_r, x_c
            x_r, x_c, its, ok, res = _newton(system, x_r, x_c, v, newton_max_iter)
            total += its
            if not ok:
                strategy = "gmin stepping"
                x_r, x_c = start_r, start_c
                for gmin in _GMIN_STEPS:
                    system.gmin = gmin
                    x_r, x_c, its, ok, res = _newton(system, x_r, x_c, v, newton_max_iter,
                                                     NEWTON_TOL if gmin == 0.0 else _LOOSE)
                    total += its
                    if not ok:
                        break
                system.gmin = 0.0
            if not ok:
                strategy = "source stepping"
                x_r, x_c = np.zeros((m, n)), np.zeros((m, n))
                for scale in _SOURCE_STEPS:
                    x_r, x_c, its, ok, res = _newton(system, x_r, x_c, v * scale,
                                                     newton_max_iter,
                                                     NEWTON_TOL if scale == 1.0 else _LOOSE)
                    total += its
                    if not ok:
                        break
            if not ok:
                raise ConvergenceError(
                    f"nodal Newton did not converge for input vector {b} of the {m}x{n} "
                    f"{crossbar.device.kind} array: damped Newton, gmin stepping and source "
                    f"stepping all failed ({total} Newton iterations); last KCL residual "
                    f"{res:.3e} A (max over nodes), tolerance: step <= {NEWTON_TOL:g} x "
                    f"max|V_in|. Try backend='reference' or smaller inputs.",
                    iterations=total, residual=float(res), tolerance=NEWTON_TOL)
        i_cell = system.cells(x_r - x_c)[0]
        row_v[b] = o.to_solver(x_r)
        col_v[b] = o.to_solver(x_c)
        col_i[b] = o.to_solver(i_cell).sum(axis=0)
        newton_its[b] = total
        strategies.append(strategy)
    return {"row_voltages": row_v, "column_voltages": col_v, "column_currents": col_i,
            "newton_iterations": newton_its, "strategy": strategies,
            "cg_iterations": system.cg_iterations}
