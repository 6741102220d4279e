"""The ``"nodal"`` backend: compiled line-preconditioned conjugate gradients.

The crossbar's nodal system (2·M·N unknowns) is solved without ever forming it:
conjugate gradients run on the column-node Schur complement
``S = A_c − D A_r⁻¹ D`` with the column chains ``A_c`` as preconditioner, where
``A_r`` (M row chains) and ``A_c`` (N column chains) are tridiagonal and are
factored once per array (see ``docs/solver.md`` and
:mod:`xbar_circuit.cython_solvers.line_pcg`). Memory is O(M·N); a batch of inputs
shares the factors and is split over a thread pool.

Paths, reported in ``info["method"]``:

* every parasitic resistance zero: the ideal product ``V·G`` (exact);
* ideal rows (``r_row == r_driver == 0``) or ideal columns (``r_col == r_sense == 0``):
  one direct sweep of the remaining chains, exact, no iteration;
* any other ``r_row == 0`` or ``r_col == 0`` (a zero-ohm wire segment, which the
  structured system cannot express): the graph-based ``"reference"`` solver;
* large batches (``use_effective``): the node-voltage response to each of the M unit
  inputs is solved once, then the batch costs one matrix product
  (``I = V·G_eff``, column voltages ``V·K_c``) plus one row-chain sweep;
* otherwise one CG solve per input vector;
* any variant of the default circuit (device models, drivers on the right or both
  ends, sense amplifiers at the top, finite-gain TIA, sense load, per-segment
  wires): :mod:`xbar_circuit.cython_solvers.newton`, the general compiled kernel,
  with Newton-Raphson for nonlinear cells (``docs/models.md``); a variant with a
  zero-ohm wire segment goes to the graph solver.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..errors import BackendError, ConvergenceError
from ..solution import BackendOutput
from ..spec import Crossbar

__all__ = [
    "DEFAULT_RTOL",
    "EFFECTIVE_MEMORY_LIMIT",
    "EFFECTIVE_MIN_CELLS",
    "check_converged",
    "ideal_output",
    "solve_batch",
]

DEFAULT_RTOL = 1e-12
"""Default relative tolerance of the CG residual (column currents then agree with
the ``"reference"`` backend to about 1e-12 relative; the contract is 1e-9)."""

EFFECTIVE_MEMORY_LIMIT = 2**30
"""Largest unit-response matrix (bytes) the automatic large-batch path may allocate."""

EFFECTIVE_MIN_CELLS = 128 * 128
"""Smallest array (M·N cells) for which the automatic large-batch path is used; below
it per-vector CG is as fast (measured, docs/solver.md)."""

_INT_CAP = 2**31 - 1
"""Largest iteration cap / thread count passed on to the compiled kernels."""

_OPTIONS = ("rtol", "max_iter", "threads", "use_effective", "v_gate", "newton_max_iter")


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
    result : LineSolveResult
        Output of :func:`xbar_circuit.cython_solvers.line_pcg.solve`.
    rtol : float
        Relative tolerance that was asked for.
    max_iter : int
        Iteration cap that was used.
    what : str
        Description of the solve for the message, e.g. ``"64x64 crossbar"``.
    """
    bad = np.flatnonzero(result.status != 1)
    if bad.size == 0:
        return
    worst = int(bad[np.argmax(np.nan_to_num(result.residual[bad], nan=np.inf))])
    iterations = int(result.iterations[worst])
    residual = float(result.residual[worst])
    if result.status[worst] == 2:
        reason = "broke down (non-finite or non-positive curvature, the system is too " \
                 "ill-conditioned for float64)"
    else:
        reason = f"reached the iteration cap max_iter={max_iter}"
    raise ConvergenceError(
        f"nodal CG on the {what} did not converge for {bad.size} of "
        f"{result.status.size} input vector(s): vector {worst} {reason} after "
        f"{iterations} iterations with relative residual {residual:.3e} > rtol={rtol:.1e}. "
        "Raise max_iter, loosen rtol, or use backend='reference'.",
        iterations=iterations, residual=residual, tolerance=rtol,
    )


def _parse_options(options: dict[str, Any], m: int, n: int) -> dict[str, Any]:
    from ..cython_solvers.line_pcg import default_max_iter, default_threads

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
    for name, default in (("max_iter", default_max_iter(m, n)), ("threads", default_threads())):
        value = options.get(name)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise BackendError(f"{name} must be a positive integer, got {value!r}")
        if value > _INT_CAP:
            raise BackendError(f"{name} must be at most {_INT_CAP}, got {value!r}")
        out[name] = int(value)
    use_effective = options.get("use_effective", "auto")
    if use_effective not in ("auto", True, False):
        raise BackendError(f"use_effective must be 'auto', True or False, got {use_effective!r}")
    out["use_effective"] = use_effective
    value = options.get("newton_max_iter", 50)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1 \
            or value > _INT_CAP:
        raise BackendError(f"newton_max_iter must be an integer in [1, {_INT_CAP}], got {value!r}")
    out["newton_max_iter"] = int(value)
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


def _graph_fallback(crossbar: Crossbar, v_in: np.ndarray, **options: Any) -> BackendOutput:
    from .reference import solve_batch as graph_solve

    out = graph_solve(crossbar, v_in, **options)
    out.info["method"] = "graph solver (zero-ohm wire segments): " + out.info["method"]
    out.info["iterations"] = 0
    out.info["effective"] = False
    return out


def solve_batch(crossbar: Crossbar, v_in: np.ndarray, **options: Any) -> BackendOutput:
    """Solve a batch of inputs on the structured nodal system.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : ndarray, shape (B, M)
        Validated row source voltages in volts (C-contiguous float64).
    rtol : float, optional
        Relative tolerance on the CG residual of each vector (default 1e-12).
    max_iter : int, optional
        CG iteration cap per vector (default ``200 + 20 (M + N)``).
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

    Returns
    -------
    BackendOutput
        ``info`` holds ``method``, ``iterations`` (max over the solves),
        ``iterations_mean``, ``residual`` (worst relative residual), ``rtol``,
        ``max_iter``, ``threads``, ``effective`` (bool), ``solves`` (number of CG
        solves) and timings in seconds.

    Raises
    ------
    BackendError
        For unknown or invalid options.
    ConvergenceError
        When a vector does not reach ``rtol`` within ``max_iter`` iterations.
    """
    start = time.perf_counter()
    m, n = crossbar.shape
    opts = _parse_options(options, m, n)
    if not crossbar.is_default_topology:
        return _solve_variant(crossbar, v_in, opts, options.get("v_gate"), start)
    crossbar.gate_voltages(options.get("v_gate"))  # a v_gate for gate-less cells is an error
    if crossbar.is_ideal:
        return ideal_output(crossbar, v_in, start)
    from ..cython_solvers import line_pcg

    if crossbar.r_row == 0.0 and crossbar.r_driver == 0.0:
        row_v, col_v, col_i = line_pcg.solve_ideal_rows(crossbar, v_in)
        info = {"method": "ideal rows (r_row = r_driver = 0): one direct sweep of the "
                          "column chains", "iterations": 0, "effective": False,
                "seconds": time.perf_counter() - start}
        return BackendOutput(row_v, col_v, col_i, info)
    if crossbar.r_col == 0.0 and crossbar.r_sense == 0.0:
        row_v, col_v, col_i = line_pcg.solve_ideal_columns(crossbar, v_in)
        info = {"method": "ideal columns (r_col = r_sense = 0): one direct sweep of the "
                          "row chains", "iterations": 0, "effective": False,
                "seconds": time.perf_counter() - start}
        return BackendOutput(row_v, col_v, col_i, info)
    if crossbar.r_row == 0.0 or crossbar.r_col == 0.0:
        return _graph_fallback(crossbar, v_in)

    v_in = np.ascontiguousarray(v_in, dtype=np.float64)
    batch = v_in.shape[0]
    factors = line_pcg.factor(crossbar)
    t_factor = time.perf_counter() - start
    effective = _effective_wanted(opts["use_effective"], batch, m, n)
    what = f"{m}x{n} crossbar"
    common = {"rtol": opts["rtol"], "max_iter": opts["max_iter"], "threads": opts["threads"]}
    if effective:
        unit = line_pcg.solve(factors, np.eye(m), store=True, store_rows=False, **common)
        check_converged(unit, opts["rtol"], opts["max_iter"], what + " (unit inputs)")
        g_eff = unit.column_currents                      # (M, N), I = V·G_eff
        response_c = unit.column_voltages.reshape(m, m * n)
        col_v = (v_in @ response_c).reshape(batch, m, n)
        del response_c
        unit.column_voltages = None
        row_v = line_pcg.row_voltages_from_columns(factors, v_in, col_v,
                                                   threads=opts["threads"])
        col_i = v_in @ g_eff
        result = unit
        method = ("line-preconditioned CG on the M unit inputs, then the batch as "
                  "products with the effective conductance G_eff and the column-voltage "
                  "response (large-batch path)")
    else:
        result = line_pcg.solve(factors, v_in, store=True, **common)
        check_converged(result, opts["rtol"], opts["max_iter"], what)
        row_v, col_v, col_i = result.row_voltages, result.column_voltages, \
            result.column_currents
        method = "line-preconditioned CG on the column Schur complement (compiled)"
    info = {
        "method": method,
        "effective": effective,
        "solves": int(result.iterations.size),
        "iterations": int(result.iterations.max()),
        "iterations_mean": float(result.iterations.mean()),
        "residual": float(result.residual.max()),
        "rtol": opts["rtol"],
        "max_iter": opts["max_iter"],
        "threads": opts["threads"],
        "factor_seconds": t_factor,
        "seconds": time.perf_counter() - start,
    }
    return BackendOutput(row_v, col_v, col_i, info)


def _solve_variant(crossbar: Crossbar, v_in: np.ndarray, opts: dict[str, Any],
                   v_gate: Any, start: float) -> BackendOutput:
    """Variant topologies and nonlinear cells (see ``docs/models.md``)."""
    from ..cython_solvers.newton import orient, solve_variant

    gates = crossbar.gate_voltages(v_gate)
    oriented = orient(crossbar)
    if oriented is None:
        out = _graph_fallback(crossbar, v_in, v_gate=v_gate,
                              max_iter=opts["newton_max_iter"])
        return out
    result = solve_variant(crossbar, oriented, np.ascontiguousarray(v_in, dtype=np.float64),
                           gates, rtol=opts["rtol"], max_iter=opts["max_iter"],
                           newton_max_iter=opts["newton_max_iter"])
    col_i = result["column_currents"]
    port = None
    if crossbar.tia is not None:
        port = crossbar.tia.output_voltage(col_i)
    elif crossbar.sense_load is not None:
        port = col_i * crossbar.sense_load
    linear = crossbar.is_linear
    info: dict[str, Any] = {
        "method": ("line-preconditioned CG on the variant topology (compiled)" if linear else
                   "Newton-Raphson with line search on the nodal system, each step by "
                   "line-preconditioned CG (compiled)"),
        "effective": False,
        "newton_iterations": int(result["newton_iterations"].max()),
        "newton_strategy": sorted(set(result["strategy"])),
        "iterations": int(result["cg_iterations"]),
        "rtol": opts["rtol"],
        "seconds": time.perf_counter() - start,
    }
    if gates is not None:
        info["v_gate"] = gates.tolist()
    return BackendOutput(result["row_voltages"], result["column_voltages"], col_i, info,
                         port_voltages=port)
