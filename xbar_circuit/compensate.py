"""Compensation by programming: conductances that make the real circuit compute ``V · G``.

IR drop makes a crossbar compute ``I = V · G_eff(G_prog)`` instead of ``V · G``.
:func:`compensate` finds programmed conductances ``G_prog`` inside the device range
``[g_off, g_on]`` such that the exact effective conductance of the circuit reproduces a
target ``G`` as closely as possible: first the multiplicative fixed point
``G_prog <- G_prog · G / G_eff`` (clipped to the range), then bounded L-BFGS-B on the
exact objective with its gradient from the adjoint of the nodal system.

The adjoint. For one input vector the column currents are linear functionals
``I_j = sum_i G_ij (x_r - x_c)_ij`` of the node voltages ``x`` of ``K x = b`` (``K`` the
symmetric nodal matrix). For ``l = sum_j c_j I_j``, with ``K λ = ∇_x l`` (right-hand side
``c_j G_ij`` at row nodes and ``-c_j G_ij`` at column nodes), and ``∂K/∂G_kl`` the rank-one
stamp of cell (k, l)::

    dl/dG_kl = (x_r - x_c)_kl · (c_l - (λ_r - λ_c)_kl)

so the gradient of any objective of ``G_eff`` (``G_eff[i, :]`` being the currents for a
unit input on row i) costs M forward solves (the ones ``G_eff`` needs anyway) and M
adjoint solves, whatever the number of cells. Linear cells only; every topology the
spec allows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_real_array
from .errors import ConvergenceError, InputError, SpecError
from .spec import Crossbar

__all__ = ["CompensationResult", "compensate", "effective_conductance_gradient"]

_CHUNK_BYTES = 2**27
"""Node voltages kept at once while accumulating the gradient over unit inputs."""


@dataclasses.dataclass(frozen=True)
class CompensationResult:
    """What :func:`compensate` reached.

    Attributes
    ----------
    g_prog : ndarray (M, N)
        Programmed conductances, siemens, inside ``[g_off, g_on]`` (on ``levels`` when
        given).
    g_eff : ndarray (M, N)
        Exact effective conductance of the circuit programmed with ``g_prog``, siemens.
    error_before, error_after : float
        The objective's relative error (see :func:`compensate`) of programming the
        target directly, and of ``g_prog``; dimensionless.
    iterations : int
        Fixed-point plus L-BFGS-B iterations.
    history : tuple of float
        Relative error after each fixed-point iteration, then at the end.
    """

    g_prog: np.ndarray
    g_eff: np.ndarray
    error_before: float
    error_after: float
    iterations: int
    history: tuple[float, ...]


def _solver_pieces(crossbar: Crossbar, g: np.ndarray) -> tuple[Any, Any]:
    from .cython_solvers.structured import Chains, orient

    o = orient(crossbar.replace(conductance=g))
    return o, Chains(o)


def _unit_solves(chains: Any, rows: np.ndarray, *, rtol: float) -> Any:
    """Solves for unit inputs on solver-orientation rows ``rows``, node voltages stored."""
    from .cython_solvers.structured import solve_sources

    m, n = chains.shape
    eye = np.zeros((rows.size, m))
    eye[np.arange(rows.size), rows] = 1.0
    result, _ = solve_sources(chains, eye, store=True, rtol=rtol, max_iter=None,
                              threads=None, what=f"{m}x{n} crossbar (unit inputs)")
    return result


def effective_conductance_gradient(
    crossbar: Crossbar, g: ArrayLike,
    weights: Callable[[np.ndarray], tuple[float, np.ndarray]], *, rtol: float = 1e-12,
) -> tuple[float, np.ndarray, np.ndarray]:
    """An objective of ``G_eff(g)`` and its exact gradient with respect to ``g``.

    Parameters
    ----------
    crossbar : Crossbar
        Template: wires, periphery and topology (its conductances are replaced by ``g``);
        linear cells.
    g : array_like (M, N)
        Programmed conductances, siemens.
    weights : callable
        ``weights(g_eff) -> (J, dJ/dG_eff)``: the objective and its (M, N) gradient with
        respect to the effective conductance (both in spec orientation).
    rtol : float
        CG tolerance of every solve.

    Returns
    -------
    (J, gradient, g_eff)
        The objective, ``dJ/dg`` (M, N) and the effective conductance (siemens), spec
        orientation.
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    m, n = crossbar.shape
    o, chains = _solver_pieces(crossbar, g)
    g_s = o.g
    step = max(1, _CHUNK_BYTES // (32 * m * n))
    # Forward: G_eff row by row (solver orientation).
    g_eff_s = np.empty((m, n))
    for lo in range(0, m, step):
        rows = np.arange(lo, min(m, lo + step))
        g_eff_s[rows] = _unit_solves(chains, rows, rtol=rtol).column_currents
    g_eff = o.to_solver(g_eff_s)     # the orientation map is its own inverse
    value, d_geff = weights(g_eff)
    # dJ/dG_eff in solver orientation: rows as unit inputs, columns as the solver's.
    c_s = o.to_solver(np.asarray(d_geff, dtype=np.float64))
    grad_s = np.zeros((m, n))
    for lo in range(0, m, step):
        rows = np.arange(lo, min(m, lo + step))
        fwd = _unit_solves(chains, rows, rtol=rtol)
        cell_v = fwd.row_voltages - fwd.column_voltages            # (b, M, N)
        c = c_s[rows]                                             # (b, N)
        b_r = c[:, None, :] * g_s[None]                           # ∂l/∂x_r
        adj = chains.solve(None, b_r, -b_r, store=True, rtol=rtol)
        if np.any(adj.status != 1):
            raise ConvergenceError("the adjoint solve did not converge", iterations=int(
                adj.iterations.max()), residual=float(adj.residual.max()), tolerance=rtol)
        adj_v = adj.row_voltages - adj.column_voltages
        grad_s += np.einsum("bkl,bkl->kl", cell_v, c[:, None, :] - adj_v)
    return float(value), o.to_solver(grad_s), g_eff


def _range_check(name: str, value: Any) -> float:
    x = float(value)
    if not (np.isfinite(x) and x >= 0.0):
        raise InputError(f"{name} must be a finite conductance >= 0 S, got {value!r}")
    return x


def compensate(
    crossbar: Crossbar, target: ArrayLike | None = None, *, g_off: float, g_on: float,
    levels: ArrayLike | None = None, v_cal: ArrayLike | None = None,
    fixed_point_iterations: int = 20, max_iter: int = 50, rtol: float = 1e-12,
) -> CompensationResult:
    """Programmed conductances whose exact ``G_eff`` reproduces a target ``G``.

    Parameters
    ----------
    crossbar : Crossbar
        The array as it will be built (wires, periphery, topology); linear cells.
    target : array_like (M, N), optional
        The conductances the computation should see, siemens (default: the crossbar's).
    g_off, g_on : float
        The device range, siemens; the target must lie inside it.
    levels : array_like, optional
        Programmable conductance levels (siemens) inside the range; the result is
        rounded to the nearest level at the end.
    v_cal : array_like (B, M), optional
        Calibration inputs, volts. With them the objective is the output error on these
        inputs, ``||V (G_eff - G)||_F / ||V G||_F``; without, the column-wise relative
        error ``sqrt(mean_j ||G_eff[:, j] - G[:, j]||² / ||G[:, j]||²)``.
    fixed_point_iterations : int
        Iterations of ``G_prog <- clip(G_prog G / G_eff)`` before L-BFGS-B.
    max_iter : int
        L-BFGS-B iteration cap (0: fixed point only).
    rtol : float
        CG tolerance of every solve.

    Returns
    -------
    CompensationResult

    Raises
    ------
    SpecError
        For nonlinear cells.
    InputError
        For a target outside ``[g_off, g_on]``, an empty or out-of-range level set,
        calibration inputs of the wrong width.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> from xbar_circuit.compensate import compensate
    >>> xbar = Crossbar.random(32, 32, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4, seed=0)
    >>> result = compensate(xbar, g_off=1e-6, g_on=2e-4)
    >>> bool(result.error_after < 0.01 * result.error_before)
    True
    """
    from scipy.optimize import minimize

    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
    if not crossbar.is_linear:
        raise SpecError("compensate() needs linear cells; this crossbar's device is "
                        f"{type(crossbar.device).__name__}")
    m, n = crossbar.shape
    lo, hi = _range_check("g_off", g_off), _range_check("g_on", g_on)
    if not lo < hi:
        raise InputError(f"need g_off < g_on, got {lo:g} and {hi:g} S")
    t = crossbar.conductance if target is None else as_real_array(
        "target", target, error=InputError, unit="S")
    t = np.ascontiguousarray(t, dtype=np.float64)
    if t.shape != (m, n):
        raise InputError(f"target must have shape {(m, n)}, got {t.shape}")
    if np.any(~np.isfinite(t)) or np.any(t < lo * (1 - 1e-12)) or np.any(t > hi * (1 + 1e-12)):
        raise InputError(f"target conductances must lie in [g_off, g_on] = [{lo:g}, {hi:g}] S")
    grid = None
    if levels is not None:
        grid = np.sort(as_real_array("levels", levels, error=InputError, unit="S").ravel())
        if grid.size == 0 or grid[0] < lo or grid[-1] > hi or not np.all(np.isfinite(grid)):
            raise InputError(f"levels must be a non-empty set inside [{lo:g}, {hi:g}] S")
    if v_cal is not None:
        v = np.atleast_2d(as_real_array("v_cal", v_cal, error=InputError, unit="V"))
        if v.shape[1] != m or v.shape[0] < 1:
            raise InputError(f"v_cal must have shape (B, {m}), got {v.shape}")
        gram = v.T @ v
        scale = float(np.sum((v @ t) ** 2))

        def objective(g_eff: np.ndarray) -> tuple[float, np.ndarray]:
            diff = g_eff - t
            return float(np.sum((v @ diff) ** 2)) / scale, 2.0 * gram @ diff / scale
    else:
        col = np.maximum(np.sum(t * t, axis=0), 1e-300)

        def objective(g_eff: np.ndarray) -> tuple[float, np.ndarray]:
            diff = g_eff - t
            return float(np.mean(np.sum(diff * diff, axis=0) / col)), 2.0 * diff / col / n

    def geff_of(g: np.ndarray) -> np.ndarray:
        from .backends.nodal import NodalSolver

        return NodalSolver(crossbar.replace(conductance=g), rtol=rtol).effective_conductance()

    g_eff = geff_of(t)
    before = float(np.sqrt(objective(g_eff)[0]))
    history = [before]
    g = t.copy()
    for _ in range(fixed_point_iterations):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(g_eff > 0.0, t / g_eff, 1.0)
        g = np.clip(g * ratio, lo, hi)
        g_eff = geff_of(g)
        history.append(float(np.sqrt(objective(g_eff)[0])))
        if history[-1] >= history[-2] * (1.0 - 1e-3):
            break
    iterations = len(history) - 1
    if max_iter > 0:
        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad, _ = effective_conductance_gradient(
                crossbar, x.reshape(m, n), objective, rtol=rtol)
            return value, grad.ravel()

        out = minimize(fun, g.ravel(), jac=True, method="L-BFGS-B",
                       bounds=[(lo, hi)] * (m * n),
                       options={"maxiter": int(max_iter), "ftol": 1e-15, "gtol": 1e-30})
        candidate = np.clip(out.x.reshape(m, n), lo, hi)
        candidate_eff = geff_of(candidate)
        if objective(candidate_eff)[0] <= objective(g_eff)[0]:
            g, g_eff = candidate, candidate_eff
        iterations += int(out.nit)
    if grid is not None:
        idx = np.clip(np.searchsorted(grid, g), 1, grid.size - 1)
        left, right = grid[idx - 1], grid[idx]
        g = np.where(np.abs(g - left) <= np.abs(right - g), left, right)
        g_eff = geff_of(g)
    after = float(np.sqrt(objective(g_eff)[0]))
    history.append(after)
    g.setflags(write=False)
    g_eff.setflags(write=False)
    return CompensationResult(g, g_eff, before, after, iterations, tuple(history))
