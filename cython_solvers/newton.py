"""Newton-Raphson for nonlinear cells on the structured kernel of every topology.

Each Newton iteration evaluates every cell's ``i`` and ``di/dv`` (compiled, series
composites by an inner 1-D Newton, :func:`._devices.eval_cells`), solves
``J dx = -F`` with :class:`~xbar_circuit.cython_solvers.structured.Chains` (``J`` has
the crossbar structure with ``D = di/dv``) and takes the step with a backtracking line
search on the norm of the Kirchhoff residual ``F`` of the reduced system (merged
nodes summed, nodes fixed by ideal sources or grounds left out). If plain damped
Newton fails: gmin stepping (a conductance ``gmin`` across every cell, 1e-2 S down
to 0 in decades), then source stepping (inputs ramped from 5 % to 100 %); if
everything fails, :class:`~xbar_circuit.errors.ConvergenceError` states the last
residual. The vectors of a batch are independent and run on a thread pool (the
kernels release the GIL).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..devices import AccessTransistor, Linear, OneS1R, OneT1R, Selector, Sinh
from ..errors import ConvergenceError
from ..spec import Crossbar
from ._devices import eval_cells
from ._pool import WorkerScratch, chunks, default_max_iter, run_chunks
from ._structured import newton_many
from .structured import Chains, Oriented

__all__ = ["NEWTON_TOL", "solve_nonlinear"]

NEWTON_TOL = 1e-12
"""Newton stops after a step whose largest node update is below ``NEWTON_TOL`` times the
largest input voltage (the step is applied: the error left is quadratic in it)."""

_GMIN_STEPS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 0.0)
_SOURCE_STEPS = tuple(float(x) for x in np.linspace(0.05, 1.0, 20))
_LOOSE = 1e-4  # step tolerance (x max|V_in|) of intermediate continuation stages
_INNER_MAX = 200  # iteration cap of the inner 1-D Newton of series cells


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
        self.gates = np.ascontiguousarray(gates, dtype=np.float64)
        self.rtol = rtol
        self.max_iter = max_iter
        self.chains = Chains(o)
        self.cg_iterations = 0
        self.gmin = 0.0

    def cells(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.empty_like(v)
        d = np.empty_like(v)
        first, a, b, mem, k = self.codes
        eval_cells(first, a, b, mem, k, self.o.g, np.ascontiguousarray(v), self.gates, i, d,
                   _INNER_MAX)
        if self.gmin:
            i += self.gmin * v
            d += self.gmin
        return i, d

    def linear_solve(self, d: np.ndarray, v: np.ndarray | None, b_r: np.ndarray | None,
                     b_c: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        self.chains.refactor(d)
        result = self.chains.solve(
            None if v is None else v[None], None if b_r is None else b_r[None],
            None if b_c is None else b_c[None], rtol=self.rtol, max_iter=self.max_iter,
            threads=1)
        its = int(result.iterations[0])
        self.cg_iterations += its
        if result.status[0] != 1:
            reason = "reached the iteration cap" if result.status[0] == 0 else "broke down"
            res = float(result.residual[0])
            raise ConvergenceError(
                f"nodal CG inside the Newton solver {reason} after {its} iterations with "
                f"relative residual {res:.3e} > rtol={self.rtol:.1e}",
                iterations=its, residual=res, tolerance=self.rtol)
        assert result.row_voltages is not None and result.column_voltages is not None
        return result.row_voltages[0], result.column_voltages[0]

    def residual(self, x_r: np.ndarray, x_c: np.ndarray, v: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Node residuals (A), di/dv of the cells (S) and the reduced residual 2-norm."""
        i, d = self.cells(x_r - x_c)
        f_r, f_c = self.chains.residual(i, v, x_r, x_c)
        g_r, g_c = self.chains.grouped(f_r, f_c)
        return f_r, f_c, d, math.hypot(float(np.linalg.norm(g_r)), float(np.linalg.norm(g_c)))

    def max_residual(self, x_r: np.ndarray, x_c: np.ndarray, v: np.ndarray) -> float:
        i, _ = self.cells(x_r - x_c)
        g_r, g_c = self.chains.grouped(*self.chains.residual(i, v, x_r, x_c))
        return float(max(np.abs(g_r).max(), np.abs(g_c).max()))


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
    # Newton steps never move nodes fixed by an ideal source: start them at the source.
    x_r = system.chains.pin(x_r, v)
    f_r, f_c, d, norm = system.residual(x_r, x_c, v)
    for it in range(1, cap + 1):
        if not math.isfinite(norm):
            return x_r, x_c, it, False, norm
        try:
            d_r, d_c = system.linear_solve(d, None, -f_r, -f_c)
        except ConvergenceError:  # the Newton system itself is too ill-conditioned:
            return x_r, x_c, it, False, norm  # let gmin / source stepping take over
        step = max(float(np.abs(d_r).max()), float(np.abs(d_c).max()))
        if step <= tol * vmax:
            x_r, x_c = x_r + d_r, x_c + d_c
            return x_r, x_c, it, True, system.max_residual(x_r, x_c, v)
        t = 1.0
        while True:
            n_r, n_c = x_r + t * d_r, x_c + t * d_c
            g_r, g_c, g_d, new_norm = system.residual(n_r, n_c, v)
            if (math.isfinite(new_norm) and new_norm <= norm * (1.0 + 1e-6)) or t < 1e-4:
                break
            t *= 0.5
        x_r, x_c, f_r, f_c, d, norm = n_r, n_c, g_r, g_c, g_d, new_norm
    return x_r, x_c, cap, False, system.max_residual(x_r, x_c, v)


def _continuation(system: _System, v: np.ndarray, newton_max_iter: int, b: int,
                  kind: str) -> tuple[np.ndarray, np.ndarray, int, str]:
    """gmin stepping, then source stepping, for a vector plain Newton could not solve."""
    m, n = system.m, system.n
    d0 = system.cells(np.zeros((m, n)))[1]
    x_r, x_c = system.linear_solve(d0, v, None, None)
    total = 0
    strategy = "gmin stepping"
    res = float("inf")
    ok = False
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
        x_r, x_c = system.linear_solve(d0, 0.0 * v, None, None)
        for scale in _SOURCE_STEPS:
            x_r, x_c, its, ok, res = _newton(system, x_r, x_c, v * scale, newton_max_iter,
                                             NEWTON_TOL if scale == 1.0 else _LOOSE)
            total += its
            if not ok:
                break
    if not ok:
        raise ConvergenceError(
            f"nodal Newton did not converge for input vector {b} of the {m}x{n} {kind} "
            f"array: damped Newton, gmin stepping and source stepping all failed ({total} "
            f"Newton iterations after the plain attempt); last KCL residual {res:.3e} A "
            f"(max over nodes), tolerance: step <= {NEWTON_TOL:g} x max|V_in|. Try "
            "backend='reference' or smaller inputs.",
            iterations=total, residual=float(res), tolerance=NEWTON_TOL)
    return x_r, x_c, total, strategy


def solve_nonlinear(crossbar: Crossbar, o: Oriented, v_in: np.ndarray,
                    gates: np.ndarray | None, *, rtol: float, max_iter: int | None,
                    newton_max_iter: int, threads: int) -> dict[str, Any]:
    """Solve a batch of a nonlinear array by Newton-Raphson (any topology).

    Parameters
    ----------
    crossbar : Crossbar
    o : Oriented
        From :func:`~xbar_circuit.cython_solvers.structured.orient`.
    v_in : ndarray (B, M)
        Source voltages in volts, spec orientation.
    gates : ndarray (M,) or None
        Gate voltages of gated cells, volts, spec orientation.
    rtol, max_iter : float, int or None
        CG tolerance and cap of each linear solve.
    newton_max_iter : int
        Newton iteration cap of each attempt (plain, and each gmin / source step).
    threads : int
        Worker threads over the batch.

    Returns
    -------
    dict
        ``row_voltages``, ``column_voltages`` (B, M, N) volts, ``column_currents``
        (B, N) amperes, all in spec orientation; ``newton_iterations`` (B,),
        ``strategy`` (list of str), ``cg_iterations`` (int).

    Raises
    ------
    ConvergenceError
        When damped Newton, gmin stepping and source stepping all fail.
    """
    m, n = crossbar.shape
    if not isinstance(o, Oriented) or np.shape(o.g) != (m, n):
        raise ValueError(f"the oriented array must be orient(crossbar) of shape {(m, n)}, "
                         f"got {type(o).__name__} of shape {np.shape(getattr(o, 'g', ()))}")
    v_in = np.ascontiguousarray(v_in, dtype=np.float64)
    if v_in.ndim != 2 or v_in.shape[1] != m or v_in.shape[0] < 1:
        raise ValueError(f"v_in must have shape (B, {m}), got {v_in.shape}")
    if not np.all(np.isfinite(v_in)):
        raise ValueError("v_in must be finite")
    batch = v_in.shape[0]
    gate_arr = np.zeros(m) if gates is None else np.asarray(gates, dtype=np.float64)
    if gate_arr.shape != (m,) or not np.all(np.isfinite(gate_arr)):
        raise ValueError(f"gates must be {m} finite voltages, got shape {gate_arr.shape}")
    cap = default_max_iter(m, n) if max_iter is None else max_iter
    v_s = o.rows_to_solver(np.asarray(v_in, dtype=np.float64))
    row_v = np.empty((batch, m, n))
    col_v = np.empty((batch, m, n))
    col_i = np.empty((batch, n))
    newton_its = np.zeros(batch, dtype=np.int64)
    strategies = [""] * batch
    kind = crossbar.device.kind
    codes = _device_codes(crossbar.device)
    gates_s = o.rows_to_solver(gate_arr)
    # Masks and finite couplings, shared read-only by the workers (the kernel factors).
    chains = Chains(o, factored=False)
    status = np.zeros(batch, dtype=np.int8)
    cg_its = np.zeros(batch, dtype=np.int64)

    rows = max(hi - lo for lo, hi in chunks(batch, threads))
    scratch = WorkerScratch(lambda: (np.empty((17, m, n)), np.empty((rows, m, n)),
                                     np.empty((rows, m, n))))

    def run(lo: int, hi: int) -> None:
        # Plain damped Newton for the whole chunk in the compiled kernel (GIL released).
        work, x_r_all, x_c_all = scratch.get()
        x_r, x_c = x_r_all[: hi - lo], x_c_all[: hi - lo]
        newton_many(*codes[:3], codes[3], codes[4], _INNER_MAX, o.g, o.wr, o.gl, o.gr, o.wc,
                    o.gb, chains.wcf, chains.link_r, chains.free_r, chains.link_c,
                    chains.free_c, gates_s, v_s[lo:hi], x_r, x_c, col_i[lo:hi],
                    newton_its[lo:hi], cg_its[lo:hi], status[lo:hi], rtol, cap,
                    newton_max_iter, NEWTON_TOL, work)
        system: _System | None = None
        for b in range(lo, hi):
            if status[b] == 1:
                strategies[b] = "newton"
                col_i[b] = o.columns_to_spec(col_i[b])
            else:
                if system is None:
                    system = _System(o, crossbar, gates_s, rtol, cap)
                xr, xc, total, strategies[b] = _continuation(system, v_s[b], newton_max_iter,
                                                             b, kind)
                x_r[b - lo], x_c[b - lo] = xr, xc
                newton_its[b] += total
                col_i[b] = o.columns_to_spec(system.cells(xr - xc)[0].sum(axis=0))
            row_v[b] = o.to_solver(x_r[b - lo])
            col_v[b] = o.to_solver(x_c[b - lo])
        if system is not None:
            cg_its[lo] += system.cg_iterations

    run_chunks(batch, threads, run)
    return {"row_voltages": row_v, "column_voltages": col_v, "column_currents": col_i,
            "newton_iterations": newton_its, "strategy": strategies,
            "cg_iterations": int(cg_its.sum())}
