"""The ``"nodal"`` backend: compiled line-preconditioned conjugate gradients, every topology.

The crossbar's nodal system (2·M·N unknowns) is solved without ever forming it:
conjugate gradients run on the column-node Schur complement
``S = A_c − D A_r⁻¹ D`` with the column chains ``A_c`` as preconditioner, where
``A_r`` (M row chains) and ``A_c`` (N column chains) are tridiagonal and are
factored once per array (docs/solver.md). Memory is O(M·N); a batch of inputs
shares the factors and is split over a thread pool.

Paths, reported in ``info["method"]``:

* every parasitic resistance zero (default circuit): the ideal product ``V·G``;
* the default circuit with ``r_row > 0`` and ``r_col > 0``: the specialised kernel
  :mod:`xbar_circuit.cython_solvers.line_pcg` (it is faster, see docs/benchmarks.md);
* every other linear circuit (drivers on the right or both ends, sense amplifiers at
  the top, finite-gain TIA, sense load, per-segment wires, zero-ohm segments or whole
  zero-ohm lines): the general kernel :mod:`xbar_circuit.cython_solvers.structured`,
  which expresses zero-ohm segments and ideal sources by the exact limits of its chain
  factors;
* nonlinear cells: Newton-Raphson on the general kernel
  (:mod:`xbar_circuit.cython_solvers.newton`), the batch on the thread pool;
* large linear batches (``use_effective``): the node-voltage response to each of the M
  unit inputs is solved once, then the batch costs matrix products (``I = V·G_eff``,
  column voltages ``V·K_c``) plus one row-chain sweep.

Accuracy contract: every column current carrying at least 1e-12 of the largest is
within 1e-9 relative of the exact solution; CG is followed by iterative refinement
on the true Kirchhoff residual where a solve may miss it (docs/solver.md).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from .._validate import check_int
from ..errors import BackendError
from ..solution import BackendOutput
from ..spec import Crossbar

__all__ = [
    "DEFAULT_RTOL",
    "EFFECTIVE_MEMORY_LIMIT",
    "EFFECTIVE_MIN_CELLS",
    "NodalSolver",
    "check_converged",
    "ideal_output",
    "solve_batch",
]

DEFAULT_RTOL = 1e-12
"""Default relative tolerance of the CG residual."""

EFFECTIVE_MEMORY_LIMIT = 2**30
"""Largest unit-response matrix (bytes) the automatic large-batch path may allocate."""

EFFECTIVE_MIN_CELLS = 128 * 128
"""Smallest array (M·N cells) for which the automatic large-batch path is used; below
it per-vector CG is as fast (measured, docs/solver.md)."""

UNIT_CHUNK_BYTES = 2**28
"""Node voltages kept at once while computing ``G_eff`` unit solve by unit solve."""

_INT_CAP = 2**31 - 1
"""Largest iteration cap / thread count passed on to the compiled kernels."""

_OPTIONS = ("rtol", "cg_max_iter", "threads", "use_effective", "v_gate", "newton_max_iter",
            "refine", "coarse")
_FORMER_OPTIONS = {"max_iter": "cg_max_iter"}
"""Former option names, still accepted with a DeprecationWarning."""


def ideal_output(crossbar: Crossbar, v_in: np.ndarray, start: float) -> BackendOutput:
    """Exact solution of an array without any parasitic resistance: ``I = V·G``."""
    m, n = crossbar.shape
    batch = v_in.shape[0]
    row_v = np.broadcast_to(v_in[:, :, None], (batch, m, n)).copy()
    col_v = np.zeros((batch, m, n))
    col_i = v_in @ crossbar.conductance
    info = {"method": "ideal product V·G (all parasitics zero)", "iterations": 0,
            "effective": False, "seconds": time.perf_counter() - start}
    return BackendOutput(row_v, col_v, col_i, info)


def check_converged(result: Any, rtol: float, max_iter: int, what: str) -> None:
    """Raise :class:`ConvergenceError` unless every vector of ``result`` converged.

    Parameters
    ----------
    result : LineSolveResult or ChainSolve
        Output of a compiled solve (fields ``status``, ``iterations``, ``residual``).
    rtol : float
        Relative tolerance that was asked for.
    max_iter : int
        Iteration cap that was used.
    what : str
        Description of the solve for the message, e.g. ``"64x64 crossbar"``.
    """
    from ..cython_solvers.structured import check

    check(result, rtol, max_iter, what)


def _positive_int(name: str, value: Any) -> int:
    return check_int(name, value, 1, _INT_CAP, error=BackendError)


def _parse_options(options: dict[str, Any], m: int, n: int) -> dict[str, Any]:
    from ..cython_solvers.structured import default_max_iter, default_threads

    options = dict(options)
    for old, new in _FORMER_OPTIONS.items():
        if old in options:
            if new in options:
                raise BackendError(f"pass {new!r} only (not also its former name {old!r})")
            warnings.warn(f"backend 'nodal': option {old!r} is now called {new!r}",
                          DeprecationWarning, stacklevel=4)
            options[new] = options.pop(old)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise BackendError(
            f"unknown option(s) for backend 'nodal': {', '.join(unknown)}; "
            f"known: {', '.join(_OPTIONS)}"
        )
    rtol = options.get("rtol", DEFAULT_RTOL)
    try:
        rtol = float(rtol)
    except (TypeError, ValueError):
        raise BackendError(f"rtol must be a number in (0, 1), got {rtol!r}") from None
    if not (math.isfinite(rtol) and 0.0 < rtol < 1.0):
        raise BackendError(f"rtol must be in (0, 1), got {rtol!r}")
    out: dict[str, Any] = {"rtol": rtol}
    for name, default in (("cg_max_iter", default_max_iter(m, n)),
                          ("threads", default_threads())):
        value = options.get(name)
        out[name] = _positive_int(name, default if value is None else value)
    for name in ("use_effective", "refine", "coarse"):
        value = options.get(name, "auto")
        if value is None:
            value = "auto"
        if value not in ("auto", True, False):
            raise BackendError(f"{name} must be 'auto', True or False, got {value!r}")
        out[name] = value
    value = options.get("newton_max_iter")
    out["newton_max_iter"] = _positive_int("newton_max_iter", 50 if value is None else value)
    return out


def _effective_wanted(use_effective: Any, batch: int, m: int, n: int) -> bool:
    """Whether a batch should go through the unit-response (``G_eff``) path.

    The unit-response path costs M solves plus a (B x M)·(M x M·N) product; it pays
    off once the batch holds a few times more vectors than the array has rows (see
    ``docs/solver.md`` for the measurement). Its memory is one (M, M, N) array plus
    the product's output.
    """
    if use_effective is False:
        return False
    if use_effective is True:
        return True
    return (batch >= 2 * m and m * n >= EFFECTIVE_MIN_CELLS
            and 16 * m * m * n <= EFFECTIVE_MEMORY_LIMIT)


class NodalSolver:
    """The ``"nodal"`` solver of one crossbar, factored once and reused for any input.

    Parameters
    ----------
    crossbar : Crossbar
        Any legal spec.
    **options
        ``rtol``, ``cg_max_iter``, ``threads``, ``use_effective``, ``newton_max_iter``,
        ``refine`` as for :func:`solve_batch` (``max_iter``, the former name of
        ``cg_max_iter``, is accepted with a :class:`DeprecationWarning`).

    Raises
    ------
    BackendError
        For unknown or invalid options.
    """

    def __init__(self, crossbar: Crossbar, **options: Any) -> None:
        if "v_gate" in options:
            raise BackendError("v_gate is an input of solve(), not of the solver")
        self.crossbar = crossbar
        m, n = crossbar.shape
        self.opts = _parse_options(options, m, n)
        self.what = f"{m}x{n} crossbar"
        self._line: Any = None
        self._chains: Any = None
        self._oriented: Any = None
        self._g_eff: np.ndarray | None = None
        if not crossbar.is_linear:
            self.path = "newton"
        elif crossbar.is_default_topology and crossbar.is_ideal:
            self.path = "ideal"
        elif (crossbar.is_default_topology and crossbar.r_row > 0.0
              and crossbar.r_col > 0.0):
            self.path = "line"
        else:
            self.path = "structured"

    # ------------------------------------------------------------- prepared state
    @property
    def oriented(self) -> Any:
        if self._oriented is None:
            from ..cython_solvers.structured import orient

            self._oriented = orient(self.crossbar)
        return self._oriented

    @property
    def chains(self) -> Any:
        """The factored general kernel (built on first use)."""
        if self._chains is None:
            from ..cython_solvers.structured import Chains

            self._chains = Chains(self.oriented)
        return self._chains

    @property
    def line_factors(self) -> Any:
        if self._line is None:
            from ..cython_solvers import line_pcg

            self._line = line_pcg.factor(self.crossbar)
        return self._line

    # ------------------------------------------------------------------- solves
    def _refine(self, v_s: np.ndarray, result: Any) -> int:
        """Refine ``result`` (solver orientation, node voltages stored) if needed."""
        from ..cython_solvers.structured import needs_refinement, refine_solution

        refine = self.opts["refine"]
        if refine is False or (refine == "auto" and not needs_refinement(
                result, stiff=self._stiffness())):
            return 0
        return refine_solution(self.chains, v_s, result, max_iter=self.opts["cg_max_iter"],
                               threads=self.opts["threads"], what=self.what)

    def _stiffness(self) -> float:
        """Stiffest wire coupling over the weakest source or ground path (see
        :func:`~xbar_circuit.cython_solvers.structured.stiffness`); from the scalars
        of the default circuit without orienting it."""
        from ..cython_solvers.structured import stiffness

        xbar = self.crossbar
        if self.path == "line":
            r_row, r_col = float(xbar.r_row), float(xbar.r_col)  # type: ignore[arg-type]
            return max(1.0 / r_row, 1.0 / r_col) / min(1.0 / (r_row + xbar.r_driver),
                                                       1.0 / (r_col + xbar.r_sense))
        return stiffness(self.oriented)

    def _solve_linear(self, v_s: np.ndarray, *, store: bool) -> tuple[Any, int]:
        """Per-vector CG (and refinement) on the solver-oriented inputs ``v_s``."""
        from ..cython_solvers import line_pcg
        from ..cython_solvers.structured import ChainSolve

        common = {"rtol": self.opts["rtol"], "max_iter": self.opts["cg_max_iter"],
                  "threads": self.opts["threads"]}
        keep = store or self.opts["refine"] is not False
        if self.path == "line":
            coarse = None if self.opts["coarse"] == "auto" else bool(self.opts["coarse"])
            raw = line_pcg.solve(self.line_factors, v_s, store=keep, coarse=coarse, **common)
            result = ChainSolve(raw.row_voltages, raw.column_voltages, raw.column_currents,
                                raw.iterations, raw.residual, raw.status)
        else:
            result = self.chains.solve(v_s, store=keep, **common)
        check_converged(result, self.opts["rtol"], self.opts["cg_max_iter"], self.what)
        steps = self._refine(v_s, result) if keep else 0
        if not store:
            result.row_voltages = result.column_voltages = None
        return result, steps

    def effective_conductance(self) -> np.ndarray:
        """The exact (M, N) ``G_eff`` with ``I = V · G_eff`` (siemens), cached.

        M unit-input solves in chunks whose node voltages stay under
        :data:`UNIT_CHUNK_BYTES`, so memory stays O(M·N) at any size.

        Raises
        ------
        SpecError
            For nonlinear cells.
        """
        from ..errors import SpecError

        if self._g_eff is not None:
            return self._g_eff.copy()
        crossbar = self.crossbar
        m, n = crossbar.shape
        if self.path == "newton":
            raise SpecError(
                "an effective conductance exists only for linear cells; this crossbar's "
                f"device is {type(crossbar.device).__name__} (solve() handles nonlinear "
                "arrays)")
        if self.path == "ideal":
            g_eff = np.array(crossbar.conductance, dtype=np.float64, copy=True)
        else:
            g_eff = np.empty((m, n))
            step = max(1, UNIT_CHUNK_BYTES // (16 * m * n))
            eye = np.eye(m)
            for lo in range(0, m, step):
                unit = self.oriented.rows_to_solver(eye[lo: lo + step]) \
                    if self.path == "structured" else eye[lo: lo + step]
                result, _ = self._solve_linear(np.ascontiguousarray(unit), store=False)
                g_eff[lo: lo + step] = result.column_currents
            if self.path == "structured":
                g_eff = self.oriented.columns_to_spec(g_eff)
        g_eff.setflags(write=False)
        self._g_eff = g_eff
        return g_eff.copy()

    def solve_batch(self, v_in: np.ndarray, v_gate: Any = None) -> BackendOutput:
        """Solve a validated (B, M) batch of source voltages (volts); see :func:`solve_batch`."""
        start = time.perf_counter()
        crossbar = self.crossbar
        gates = crossbar.gate_voltages(v_gate)  # a v_gate for gate-less cells is an error
        if self.path == "ideal":
            return ideal_output(crossbar, v_in, start)
        if self.path == "newton":
            return self._solve_newton(v_in, gates, start)
        m, n = crossbar.shape
        batch = v_in.shape[0]
        opts = self.opts
        structured = self.path == "structured"
        o = self.oriented if structured else None
        v_s = o.rows_to_solver(v_in) if o is not None else np.ascontiguousarray(v_in)
        effective = _effective_wanted(opts["use_effective"], batch, m, n)
        steps = 0
        if effective:
            from ..cython_solvers.structured import ChainSolve

            eye = np.eye(m)
            result, steps = self._solve_linear(eye, store=True)
            assert result.column_voltages is not None
            g_eff_s = result.column_currents                  # (M, N), I = V·G_eff
            col_v = (v_s @ result.column_voltages.reshape(m, m * n)).reshape(batch, m, n)
            result = ChainSolve(None, col_v, v_s @ g_eff_s, result.iterations,
                                result.residual, result.status)
            if structured:
                row_v = self.chains.rows_from_columns(v_s, col_v, threads=opts["threads"])
            else:
                from ..cython_solvers import line_pcg

                row_v = line_pcg.row_voltages_from_columns(self.line_factors, v_s, col_v,
                                                           threads=opts["threads"])
            result.row_voltages = row_v
            method = ("line-preconditioned CG on the M unit inputs, then the batch as "
                      "products with the effective conductance G_eff and the column-voltage "
                      "response (large-batch path)")
        else:
            result, steps = self._solve_linear(v_s, store=True)
            method = "line-preconditioned CG on the column Schur complement (compiled)"
        if structured:
            method += "; general topology kernel"
        row_v, col_v, col_i = result.row_voltages, result.column_voltages, \
            result.column_currents
        if o is not None:
            row_v, col_v = o.to_solver(row_v), o.to_solver(col_v)
            col_i = o.columns_to_spec(col_i)
        port = None
        if crossbar.tia is not None:
            port = crossbar.tia.output_voltage(col_i)
        elif crossbar.sense_load is not None:
            port = col_i * crossbar.sense_load
        info = {
            "method": method,
            "effective": effective,
            "solves": int(result.iterations.size),
            "iterations": int(result.iterations.max()),
            "iterations_mean": float(result.iterations.mean()),
            "residual": float(result.residual.max()),
            "refinement_steps": steps,
            "rtol": opts["rtol"],
            "cg_max_iter": opts["cg_max_iter"],
            "threads": opts["threads"],
            "seconds": time.perf_counter() - start,
        }
        return BackendOutput(row_v, col_v, col_i, info, port_voltages=port)

    def _solve_newton(self, v_in: np.ndarray, gates: np.ndarray | None,
                      start: float) -> BackendOutput:
        from ..cython_solvers.newton import solve_nonlinear

        crossbar = self.crossbar
        opts = self.opts
        result = solve_nonlinear(crossbar, self.oriented, v_in, gates, rtol=opts["rtol"],
                                 max_iter=opts["cg_max_iter"],
                                 newton_max_iter=opts["newton_max_iter"],
                                 threads=opts["threads"])
        col_i = result["column_currents"]
        port = None
        if crossbar.tia is not None:
            port = crossbar.tia.output_voltage(col_i)
        elif crossbar.sense_load is not None:
            port = col_i * crossbar.sense_load
        info: dict[str, Any] = {
            "method": ("Newton-Raphson with line search on the nodal system, each step by "
                       "line-preconditioned CG (compiled, general topology kernel)"),
            "effective": False,
            "newton_iterations": int(result["newton_iterations"].max()),
            "newton_strategy": sorted(set(result["strategy"])),
            "iterations": int(result["cg_iterations"]),
            "rtol": opts["rtol"],
            "threads": opts["threads"],
            "seconds": time.perf_counter() - start,
        }
        if gates is not None:
            info["v_gate"] = gates.tolist()
        return BackendOutput(result["row_voltages"], result["column_voltages"], col_i, info,
                             port_voltages=port)


def solve_batch(crossbar: Crossbar, v_in: np.ndarray, **options: Any) -> BackendOutput:
    """Solve a batch of inputs on the structured nodal system.

    Parameters
    ----------
    crossbar : Crossbar
        The array (any legal spec).
    v_in : ndarray, shape (B, M)
        Validated row source voltages in volts (C-contiguous float64).
    rtol : float, optional
        Relative tolerance on the CG residual of each vector (default 1e-12).
    cg_max_iter : int, optional
        CG iteration cap per vector (default ``200 + 20 (M + N)``); its former name
        ``max_iter`` is accepted with a :class:`DeprecationWarning`.
    threads : int, optional
        Worker threads over the batch (default ``min(2, os.cpu_count())``); 1 runs
        in the calling thread.
    v_gate : float or array_like (M,), optional
        Gate-line voltages of 1T1R rows, volts (default: the device's ``v_gate``).
    newton_max_iter : int, optional
        Newton iteration cap per attempt for nonlinear cells (default 50).
    use_effective : {"auto", True, False}, optional
        Solve the M unit inputs once and get the batch by matrix products. ``"auto"``
        (default) does so when the batch has at least 2·M vectors, the array has at
        least :data:`EFFECTIVE_MIN_CELLS` cells and twice the (M, M, N) column-voltage
        response (16·M²·N bytes) fits in :data:`EFFECTIVE_MEMORY_LIMIT`.
    coarse : {"auto", True, False}, optional
        Coarse-corrected CG for the default circuit (docs/solver.md, "Coarse level").
        ``"auto"`` (default) uses it on arrays of at least 512x512 cells that span at
        least six decay lengths ``sqrt(r_wire^-1 / mean(G))`` of their lines, where CG
        on the line preconditioner alone needs iterations growing with the size.
    refine : {"auto", True, False}, optional
        Iterative refinement on the true Kirchhoff residual after CG. ``"auto"``
        (default) refines when a column's current is below 1e-3 of the largest, CG
        needed more than 150 iterations, or the stiffest wire conductance exceeds 1e4
        times the weakest source or ground path: the cases where the global CG
        residual does not guarantee every column to 1e-9; ``True`` always, ``False``
        never.

    Returns
    -------
    BackendOutput
        ``info`` holds ``method``, ``iterations`` (max over the solves),
        ``iterations_mean``, ``residual`` (worst relative residual), ``rtol``,
        ``cg_max_iter``, ``threads``, ``effective`` (bool), ``solves`` (number of CG
        solves), ``refinement_steps`` and the time in seconds.

    Raises
    ------
    BackendError
        For unknown or invalid options.
    ConvergenceError
        When a vector does not reach ``rtol`` within ``cg_max_iter`` iterations, or
        refinement cannot reach the accuracy contract.
    """
    v_gate = options.pop("v_gate", None)
    return NodalSolver(crossbar, **options).solve_batch(v_in, v_gate)
