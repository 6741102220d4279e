"""Compensation by programming: conductances that make the real circuit compute ``V · G``.

IR drop makes a crossbar compute ``I = V · G_eff(G_prog)`` instead of ``V · G``.
:func:`compensate` finds programmed conductances ``G_prog`` inside the device range
``[g_off, g_on]`` such that the exact effective conductance of the circuit reproduces a
target ``G`` as closely as possible: first the multiplicative fixed point
``G_prog <- G_prog · G / G_eff`` (clipped to the range), then bounded L-BFGS-B on the
exact objective with its gradient from the adjoint of the nodal system.

Linear cells. For one input vector the column currents are linear functionals
``I_j = sum_i G_ij (x_r - x_c)_ij`` of the node voltages ``x`` of ``K x = b`` (``K`` the
symmetric nodal matrix). For ``l = sum_j c_j I_j``, with ``K λ = ∇_x l`` (right-hand side
``c_j G_ij`` at row nodes and ``-c_j G_ij`` at column nodes), and ``∂K/∂G_kl`` the rank-one
stamp of cell (k, l)::

    dl/dG_kl = (x_r - x_c)_kl · (c_l - (λ_r - λ_c)_kl)

so the gradient of any objective of ``G_eff`` (``G_eff[i, :]`` being the currents for a
unit input on row i) costs M forward solves (the ones ``G_eff`` needs anyway) and M
adjoint solves, whatever the number of cells.

Nonlinear cells: the operating point of the read voltage. A cell carries
``i = f(u, g)`` at cell voltage ``u = x_r - x_c`` (volts) and programmed conductance
``g`` (siemens). There is no input-independent ``G_eff``; what the array computes is
the current at the voltages it is read with. The *operating-point (secant) effective
conductance* at read voltage ``v_read`` is::

    G_op[i, j] = I_j(v_read e_i) / v_read

the current into column j per volt when row i is read at ``v_read`` and every other row
is at 0 V: the definition of ``G_eff`` with the unit input replaced by the read
voltage. It reduces to ``G_eff`` for linear cells, and with ``G_op = G`` the statement
"the crossbar computes ``I = V · G`` at the read voltage" is true for every read of one
row at ``v_read``; for reads that drive several rows at once (nonlinear currents do not
add) the objective is the output error on calibration inputs ``v_cal`` instead, each
input being its own operating point. The differential conductance ``dI_j/dV_i`` is
*not* the right target: it describes the response to a small change of the inputs
around the operating point, not the read current. A sinh cell read at ``k v = 0.6``
delivers ``g sinh(kv)/k = 1.06 g v`` while its differential conductance is
``g cosh(kv) = 1.19 g``; matching the differential conductance to ``G`` would leave the
read currents wrong by the ratio of the two.

The gradient at the converged operating point ``F(x*, g) = 0`` (``F`` the KCL residual,
currents leaving each node): ``J = ∂F/∂x`` is the symmetric nodal matrix with every cell
stamped by its differential conductance ``g_d = ∂f/∂u`` at ``u*``, and ``∂F/∂g_kl`` is
``∂f/∂g`` at the row node of cell (k, l) and ``-∂f/∂g`` at its column node. For
``l = sum_j c_j I_j = sum_ij c_j f(u_ij, g_ij)``, implicit differentiation gives
``dl/dg = ∂l/∂g - λ^T ∂F/∂g`` with the adjoint ``J λ = ∇_x l`` (right-hand side
``c_j g_d,ij`` at row nodes and ``-c_j g_d,ij`` at column nodes)::

    dl/dg_kl = (∂f/∂g)_kl · (c_l - (λ_r - λ_c)_kl)

For linear cells ``∂f/∂g = u`` and ``g_d = g``, which is the formula above. Each
operating point needs one Newton solve and one linear adjoint solve of its Jacobian
(the linear kernel with the cells' differential conductances). ``∂f/∂g`` is exact for
:class:`~xbar_circuit.devices.Linear` and :class:`~xbar_circuit.devices.Sinh` cells
(``f`` is proportional to ``g``) and a central difference in ``g`` at fixed ``u`` (step
``1e-6 g``) for series composites; cells whose current does not depend on ``g``
(:class:`~xbar_circuit.devices.Selector`, :class:`~xbar_circuit.devices.AccessTransistor`)
cannot be compensated by programming.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._validate import as_real_array, check_int, check_real
from .devices import AccessTransistor, Device, Linear, Selector, Sinh
from .errors import ConvergenceError, InputError, SpecError
from .spec import Crossbar

__all__ = [
    "CompensationError",
    "CompensationResult",
    "TargetRangeError",
    "compensate",
    "effective_conductance_gradient",
    "operating_point_conductance",
    "operating_point_gradient",
]

ROUNDING_ERROR = 1e-14
"""A relative error at or below this is rounding in the solves: the fixed point stops
there and counts as converged."""

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
        Effective conductance of the circuit programmed with ``g_prog``, siemens: the
        exact ``G_eff`` for linear cells, the operating-point (secant) conductance at
        ``v_read`` for nonlinear cells (:func:`operating_point_conductance`).
    error_before, error_after : float
        The objective's relative error (see :func:`compensate`) of programming the
        target directly, and of ``g_prog``; dimensionless.
    iterations : int
        Fixed-point plus L-BFGS-B iterations.
    history : tuple of float
        Relative error after each fixed-point iteration, then at the end.
    converged : bool
        Whether L-BFGS-B stopped on its own criterion (False when it hit ``max_iter``
        or when only the fixed point ran and its last step still improved).
    message : str
        How the optimization stopped (L-BFGS-B's message, or the fixed point's).
    v_read : float or None
        Read voltage of the operating point, volts (None for linear cells).
    """

    g_prog: np.ndarray
    g_eff: np.ndarray
    error_before: float
    error_after: float
    iterations: int
    history: tuple[float, ...]
    converged: bool = True
    message: str = ""
    v_read: float | None = None


class TargetRangeError(InputError):
    """Target conductances lie outside the device range ``[g_off, g_on]``.

    No programming can make a cell exceed the range, so the request is refused before
    any solve.

    Attributes
    ----------
    n_below, n_above : int
        Target entries below ``g_off`` / above ``g_on``.
    target_min, target_max : float
        Smallest and largest target entry, siemens (NaN when the target has a NaN).
    g_off, g_on : float
        The device range, siemens.
    """

    def __init__(self, message: str, *, n_below: int, n_above: int, target_min: float,
                 target_max: float, g_off: float, g_on: float) -> None:
        super().__init__(message)
        self.n_below, self.n_above = n_below, n_above
        self.target_min, self.target_max = target_min, target_max
        self.g_off, self.g_on = g_off, g_on


class CompensationError(ConvergenceError):
    """Compensation stopped short: a solve failed during it, or ``tol`` was not reached.

    Attributes
    ----------
    result : CompensationResult or None
        The best programming reached before the failure (None when not even the
        uncompensated circuit could be solved).
    iterations : int
        Iterations done when it stopped.
    residual : float
        Relative error reached (``result.error_after``; NaN without a result).
    tolerance : float
        The requested ``tol`` (NaN when a solve failed).
    """

    def __init__(self, message: str, result: CompensationResult | None, *,
                 tolerance: float = float("nan")) -> None:
        super().__init__(message, iterations=0 if result is None else result.iterations,
                         residual=float("nan") if result is None else result.error_after,
                         tolerance=tolerance)
        self.result = result


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
        The objective, ``dJ/dg`` (M, N, in units of J per siemens) and the effective
        conductance (siemens), spec orientation.
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


# ------------------------------------------------------------------ nonlinear cells
def _check_compensable(device: Device) -> None:
    if isinstance(device, (Selector, AccessTransistor)):
        raise SpecError(f"a {type(device).__name__} cell's current does not depend on its "
                        "programmed conductance: it cannot be compensated by programming")


def _cell_response(device: Device, u: np.ndarray, g: np.ndarray, gates: Any
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(∂f/∂u, ∂f/∂g)`` of every cell at cell voltages ``u`` (V): siemens and A/S."""
    _, g_d = device.current_and_conductance(u, g, gates)
    if isinstance(device, (Linear, Sinh)):           # f proportional to g
        return g_d, device.current_and_conductance(u, np.ones_like(g), gates)[0]
    h = 1e-6 * np.maximum(g, 1e-12)
    up = device.current_and_conductance(u, g + h, gates)[0]
    down = device.current_and_conductance(u, g - h, gates)[0]
    return g_d, (up - down) / (2.0 * h)


def _operating_points(crossbar: Crossbar, v: np.ndarray, rtol: float, v_gate: Any) -> Any:
    from .backends.nodal import NodalSolver

    return NodalSolver(crossbar, rtol=rtol).solve_batch(np.ascontiguousarray(v), v_gate)


def operating_point_conductance(crossbar: Crossbar, v_read: float, *, rtol: float = 1e-12,
                                v_gate: Any = None) -> np.ndarray:
    """The operating-point (secant) effective conductance at read voltage ``v_read``.

    ``G_op[i, j] = I_j(v_read e_i) / v_read``: the current into column j (amperes) per
    volt when row i is read at ``v_read`` and the other rows are at 0 V. For linear
    cells it is the exact ``G_eff`` (whatever ``v_read``). See the module docstring for
    why the secant and not the differential conductance.

    Parameters
    ----------
    crossbar : Crossbar
        The programmed array, any device.
    v_read : float
        Read voltage, volts (> 0).
    rtol : float
        CG tolerance of every linear solve (and of the Newton steps).
    v_gate : float or array_like (M,), optional
        Gate voltages of gated cells, volts.

    Returns
    -------
    ndarray (M, N)
        Siemens.
    """
    if crossbar.is_linear:
        from .backends.nodal import NodalSolver

        return NodalSolver(crossbar, rtol=rtol).effective_conductance()
    v_read = check_real("v_read", v_read, 0.0, unit="V", lo_open=True)
    m, n = crossbar.shape
    out = np.empty((m, n))
    step = max(1, _CHUNK_BYTES // (16 * m * n))
    for lo in range(0, m, step):
        rows = np.arange(lo, min(m, lo + step))
        v = np.zeros((rows.size, m))
        v[np.arange(rows.size), rows] = v_read
        out[rows] = np.asarray(_operating_points(crossbar, v, rtol, v_gate)
                               .column_currents).reshape(rows.size, n) / v_read
    return out


def operating_point_gradient(
    crossbar: Crossbar, g: ArrayLike, v_in: ArrayLike,
    weights: Callable[[np.ndarray], tuple[float, np.ndarray]], *, rtol: float = 1e-12,
    v_gate: Any = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """An objective of the column currents at operating points and its exact gradient.

    Each input vector is solved (Newton for nonlinear cells); the gradient comes from
    one adjoint solve of the Jacobian at each converged operating point (module
    docstring).

    Parameters
    ----------
    crossbar : Crossbar
        Template (its conductances are replaced by ``g``); any device whose current
        depends on ``g``.
    g : array_like (M, N)
        Programmed conductances, siemens.
    v_in : array_like (B, M)
        Row source voltages of the operating points, volts.
    weights : callable
        ``weights(currents) -> (J, dJ/dI)``: the objective of the (B, N) column currents
        (amperes) and its (B, N) gradient with respect to them.
    rtol : float
        CG tolerance of every linear solve.
    v_gate : float or array_like (M,), optional
        Gate voltages of gated cells, volts.

    Returns
    -------
    (J, gradient, currents)
        The objective, ``dJ/dg`` (M, N, in units of J per siemens) and the (B, N) column
        currents in amperes, spec orientation.

    Raises
    ------
    SpecError
        For cells whose current does not depend on ``g``.
    ConvergenceError
        If a Newton or adjoint solve does not converge.
    """
    from .cython_solvers.structured import Chains, orient

    _check_compensable(crossbar.device)
    g = np.ascontiguousarray(g, dtype=np.float64)
    xbar = crossbar.replace(conductance=g)
    m, n = xbar.shape
    v = np.ascontiguousarray(np.atleast_2d(np.asarray(v_in, dtype=np.float64)))
    batch = v.shape[0]
    step = max(1, _CHUNK_BYTES // (16 * m * n))
    first = _operating_points(xbar, v[:step], rtol, v_gate)
    if batch <= step:
        currents = np.asarray(first.column_currents).reshape(batch, n)
    else:
        currents = np.concatenate(
            [np.asarray(first.column_currents).reshape(-1, n)]
            + [np.asarray(_operating_points(xbar, v[lo: lo + step], rtol, v_gate)
                          .column_currents).reshape(-1, n) for lo in range(step, batch, step)])
    value, d_i = weights(currents)
    d_i = np.asarray(d_i, dtype=np.float64).reshape(batch, n)
    gates = xbar.gate_voltages(v_gate)
    gates_c = None if gates is None else gates[:, None]
    o = orient(xbar)
    grad = np.zeros((m, n))
    for lo in range(0, batch, step):
        out = first if lo == 0 else _operating_points(xbar, v[lo: lo + step], rtol, v_gate)
        row_v = np.asarray(out.row_voltages).reshape(-1, m, n)
        col_v = np.asarray(out.column_voltages).reshape(-1, m, n)
        for k in range(row_v.shape[0]):
            c = d_i[lo + k]
            if not np.any(c):
                continue
            g_d, dfdg = _cell_response(xbar.device, row_v[k] - col_v[k], g, gates_c)
            jac = Chains(dataclasses.replace(o, g=o.to_solver(g_d)))
            b_r = o.to_solver(c[None, :] * g_d)[None]
            adj = jac.solve(None, b_r, -b_r, store=True, rtol=rtol)
            if np.any(adj.status != 1):
                raise ConvergenceError(
                    f"the adjoint solve of operating point {lo + k} did not converge",
                    iterations=int(adj.iterations.max()), residual=float(adj.residual.max()),
                    tolerance=rtol)
            lam = o.to_solver((np.asarray(adj.row_voltages)
                               - np.asarray(adj.column_voltages))[0])
            grad += dfdg * (c[None, :] - lam)
    return float(value), grad, currents


# ------------------------------------------------------------------ compensate
def _range_check(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if isinstance(value, (str, bytes, bool)) or not (np.isfinite(x) and x >= 0.0):
        raise InputError(f"{name} must be a finite conductance >= 0 S, got {value!r}")
    return x


def _check_target(t: np.ndarray, lo: float, hi: float) -> None:
    finite = np.isfinite(t)
    below = int(np.sum(t[finite] < lo * (1 - 1e-12)))
    above = int(np.sum(t[finite] > hi * (1 + 1e-12)))
    bad = int(np.sum(~finite))
    if below or above or bad:
        t_min = float(np.min(t)) if not bad else float("nan")
        t_max = float(np.max(t)) if not bad else float("nan")
        what = [f"{below} below g_off"] if below else []
        what += [f"{above} above g_on"] if above else []
        what += [f"{bad} not finite"] if bad else []
        raise TargetRangeError(
            f"target conductances must lie in [g_off, g_on] = [{lo:g}, {hi:g}] S: "
            f"{', '.join(what)} of {t.size} (target range [{t_min:g}, {t_max:g}] S); no "
            "programming reaches outside the device range (widen it, or scale the target)",
            n_below=below, n_above=above, target_min=t_min, target_max=t_max, g_off=lo,
            g_on=hi)


def _check_levels(levels: ArrayLike, lo: float, hi: float) -> np.ndarray:
    grid = np.sort(as_real_array("levels", levels, error=InputError, unit="S").ravel())
    if grid.size == 0:
        raise InputError("levels must be a non-empty set of conductances (siemens)")
    if not np.all(np.isfinite(grid)):
        raise InputError("levels must be finite conductances (siemens)")
    out = np.sum((grid < lo * (1 - 1e-12)) | (grid > hi * (1 + 1e-12)))
    if out:
        raise InputError(f"levels must be a non-empty set inside [{lo:g}, {hi:g}] S: {out} of "
                         f"{grid.size} levels lie outside (levels span [{grid[0]:g}, "
                         f"{grid[-1]:g}] S)")
    return np.unique(grid)


def compensate(
    crossbar: Crossbar, target: ArrayLike | None = None, *, g_off: float, g_on: float,
    levels: ArrayLike | None = None, v_cal: ArrayLike | None = None,
    v_read: float | None = None, v_gate: Any = None, fixed_point_iterations: int = 20,
    max_iter: int = 50, rtol: float = 1e-12, tol: float | None = None,
) -> CompensationResult:
    """Programmed conductances whose circuit reproduces a target ``G`` at its read.

    Parameters
    ----------
    crossbar : Crossbar
        The array as it will be built (wires, periphery, topology, device).
    target : array_like (M, N), optional
        The conductances the computation should see, siemens (default: the crossbar's).
    g_off, g_on : float
        The device range, siemens; the target must lie inside it.
    levels : array_like, optional
        Programmable conductance levels (siemens) inside the range; the result is
        rounded to the nearest level at the end.
    v_cal : array_like (B, M), optional
        Calibration inputs, volts. With them the objective is the output error on these
        inputs, ``||I(V) - V G||_F / ||V G||_F`` (``I(V)`` the exact column currents, for
        nonlinear cells at each input's own operating point); without, the column-wise
        relative error ``sqrt(mean_j ||G_eff[:, j] - G[:, j]||² / ||G[:, j]||²)`` of the
        effective conductance (for nonlinear cells the operating-point conductance at
        ``v_read``, :func:`operating_point_conductance`).
    v_read : float, optional
        Read voltage, volts, of nonlinear cells (ignored for linear cells). Default: the
        largest ``|v_cal|``; required for nonlinear cells without ``v_cal``.
    v_gate : float or array_like (M,), optional
        Gate voltages of gated cells (1T1R), volts.
    fixed_point_iterations : int
        Iterations of ``G_prog <- clip(G_prog (G / G_eff)^a)`` before L-BFGS-B, each from
        the best iterate; the exponent ``a`` starts at 1 and is halved whenever a step
        gains less than 0.1 %, and the fixed point stops below ``a = 0.1``.
    max_iter : int
        L-BFGS-B iteration cap (0: fixed point only).
    rtol : float
        CG tolerance of every solve.
    tol : float, optional
        Required relative error: if the result's ``error_after`` exceeds it,
        :class:`CompensationError` is raised carrying the result.

    Returns
    -------
    CompensationResult

    Raises
    ------
    SpecError
        For cells whose current does not depend on the programmed conductance.
    TargetRangeError
        For a target outside ``[g_off, g_on]`` (an :class:`InputError`).
    InputError
        For an empty or out-of-range level set, calibration inputs of the wrong width,
        a missing or non-positive read voltage.
    CompensationError
        When a solve fails during the optimization, or ``tol`` is not reached; its
        ``result`` holds the best programming reached.

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
    linear = crossbar.is_linear
    if not linear:
        _check_compensable(crossbar.device)
    m, n = crossbar.shape
    lo, hi = _range_check("g_off", g_off), _range_check("g_on", g_on)
    if not lo < hi:
        raise InputError(f"need g_off < g_on, got {lo:g} and {hi:g} S")
    t = crossbar.conductance if target is None else as_real_array(
        "target", target, error=InputError, unit="S")
    t = np.ascontiguousarray(t, dtype=np.float64)
    if t.shape != (m, n):
        raise InputError(f"target must have shape {(m, n)}, got {t.shape}")
    _check_target(t, lo, hi)
    fixed_point_iterations = check_int("fixed_point_iterations", fixed_point_iterations, 0)
    max_iter = check_int("max_iter", max_iter, 0)
    if tol is not None:
        tol = check_real("tol", tol, 0.0, unit="")
    grid = None if levels is None else _check_levels(levels, lo, hi)
    v = None
    if v_cal is not None:
        v = np.atleast_2d(as_real_array("v_cal", v_cal, error=InputError, unit="V"))
        if v.ndim != 2 or v.shape[1] != m or v.shape[0] < 1:
            raise InputError(f"v_cal must have shape (B, {m}), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise InputError(f"v_cal must be finite voltages (V): {int(np.sum(~np.isfinite(v)))}"
                             f" of {v.size} entries are NaN or infinite")
        with np.errstate(over="ignore", invalid="ignore"):
            overflow = not np.isfinite(float(np.sum((v @ t) ** 2)))
        if overflow:
            raise InputError("v_cal is too large: its ideal output V·G overflows (volts "
                             "expected)")
        if not np.any(v @ t):
            raise InputError("v_cal gives a zero ideal output V·G: nothing to compensate")
    read: float | None = None
    if not linear:
        if v_read is None:
            if v is None:
                raise InputError("nonlinear cells are compensated at their read voltage: "
                                 "pass v_read (volts) or calibration inputs v_cal")
            v_read = float(np.max(np.abs(v)))
        try:
            read = float(v_read) if not isinstance(v_read, (str, bytes, bool)) else np.nan
        except (TypeError, ValueError):
            read = float("nan")
        if not (np.isfinite(read) and read > 0.0):
            raise InputError(f"v_read must be a finite voltage > 0 V, got {v_read!r}")

    # The objective: of the (M, N) effective conductance, or of the calibration currents.
    if v is not None:
        y = v @ t
        scale = float(np.sum(y * y))
        gram = v.T @ v

        def on_geff(g_eff: np.ndarray) -> tuple[float, np.ndarray]:
            diff = g_eff - t
            return float(np.sum((v @ diff) ** 2)) / scale, 2.0 * gram @ diff / scale

        def on_currents(i: np.ndarray) -> tuple[float, np.ndarray]:
            diff = i - y
            return float(np.sum(diff * diff)) / scale, 2.0 * diff / scale
    else:
        col = np.maximum(np.sum(t * t, axis=0), 1e-300)

        def on_geff(g_eff: np.ndarray) -> tuple[float, np.ndarray]:
            diff = g_eff - t
            return float(np.mean(np.sum(diff * diff, axis=0) / col)), 2.0 * diff / col / n

        def on_currents(i: np.ndarray) -> tuple[float, np.ndarray]:  # unit reads at v_read
            value, d = on_geff(i / float(read or 1.0))
            return value, d / float(read or 1.0)

    reads = v if v is not None else np.eye(m) * (read if read else 1.0)

    def geff_of(g: np.ndarray) -> np.ndarray:
        xbar = crossbar.replace(conductance=g)
        return operating_point_conductance(xbar, read if read else 1.0, rtol=rtol,
                                           v_gate=v_gate)

    def measure(g: np.ndarray, g_eff: np.ndarray) -> float:
        """Squared relative error of programming ``g`` (whose G_eff / G_op is g_eff)."""
        if linear or v is None:
            return on_geff(g_eff)[0]
        out = _operating_points(crossbar.replace(conductance=g), v, rtol, v_gate)
        return on_currents(np.asarray(out.column_currents).reshape(v.shape[0], n))[0]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        if linear:
            value, grad, _ = effective_conductance_gradient(
                crossbar, x.reshape(m, n), on_geff, rtol=rtol)
        else:
            value, grad, _ = operating_point_gradient(
                crossbar, x.reshape(m, n), reads, on_currents, rtol=rtol, v_gate=v_gate)
        return value, grad.ravel()

    def result_of(g: np.ndarray, g_eff: np.ndarray, err: float, its: int,
                  converged: bool, message: str) -> CompensationResult:
        g, g_eff = np.array(g), np.array(g_eff)
        g.setflags(write=False)
        g_eff.setflags(write=False)
        return CompensationResult(g, g_eff, before, err, its, (*history, err), converged,
                                  message, read)

    try:
        g_eff = geff_of(t)
        best_sq = measure(t, g_eff)
    except ConvergenceError as exc:
        raise CompensationError(f"the uncompensated circuit could not be solved: {exc}",
                                None) from exc
    before = float(np.sqrt(best_sq))
    history = [before]
    g = best = t.copy()
    best_eff = g_eff
    converged, message = True, "target programmed as is (no iterations)"
    try:
        alpha = 1.0                        # damping exponent of the multiplicative step
        for it in range(fixed_point_iterations):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(best_eff > 0.0, t / best_eff, 1.0)
            g = np.clip(best * ratio**alpha, lo, hi)
            g_eff = geff_of(g)
            sq = measure(g, g_eff)
            history.append(float(np.sqrt(sq)))
            improved = np.sqrt(sq) < np.sqrt(best_sq) * (1.0 - 1e-3)
            if sq < best_sq:
                best, best_eff, best_sq = g, g_eff, sq
            if np.sqrt(best_sq) <= ROUNDING_ERROR:
                message = f"fixed point reached rounding level after {it + 1} iteration(s)"
                break
            if not improved:
                # Coupled cells (raising one starves its neighbours) or clipped ones:
                # shorter steps from the best iterate, until they stop paying.
                alpha /= 2.0
                if alpha < 0.1:
                    message = f"fixed point stalled after {it + 1} iteration(s)"
                    break
        else:
            converged = fixed_point_iterations == 0
            message = f"fixed point ran its {fixed_point_iterations} iteration(s)"
        iterations = len(history) - 1
        if max_iter > 0:
            out = minimize(fun, best.ravel(), jac=True, method="L-BFGS-B",
                           bounds=[(lo, hi)] * (m * n),
                           options={"maxiter": int(max_iter), "ftol": 1e-15, "gtol": 1e-30})
            candidate = np.clip(out.x.reshape(m, n), lo, hi)
            candidate_eff = geff_of(candidate)
            sq = measure(candidate, candidate_eff)
            if sq <= best_sq:
                best, best_eff, best_sq = candidate, candidate_eff, sq
            iterations += int(out.nit)
            converged = bool(out.success)
            message = f"L-BFGS-B: {out.message}"
    except ConvergenceError as exc:
        reached = result_of(best, best_eff, float(np.sqrt(best_sq)), len(history) - 1, False,
                            f"a solve failed: {exc}")
        raise CompensationError(
            f"a solve did not converge during compensation ({exc}); reached relative error "
            f"{reached.error_after:.3g} (from {before:.3g}) after {reached.iterations} "
            "iteration(s), kept in .result", reached) from exc
    g, g_eff = best, best_eff
    if grid is not None:
        idx = np.clip(np.searchsorted(grid, g), 1, max(grid.size - 1, 1))
        left, right = grid[idx - 1], grid[np.minimum(idx, grid.size - 1)]
        g = np.where(np.abs(g - left) <= np.abs(right - g), left, right)
        g_eff = geff_of(g)
        best_sq = measure(g, g_eff)
        message += f"; rounded to {grid.size} levels"
        if np.sqrt(best_sq) > before:
            message += (" (the rounding error exceeds what compensation removed: the "
                        "target as programmed is closer)")
            warnings.warn(f"compensate: rounding to {grid.size} levels left a relative "
                          f"error of {np.sqrt(best_sq):.3g}, above the {before:.3g} of "
                          "programming the target as is; use finer levels",
                          RuntimeWarning, stacklevel=2)
    result = result_of(g, g_eff, float(np.sqrt(best_sq)), iterations, converged, message)
    if tol is not None and result.error_after > tol:
        raise CompensationError(
            f"compensation reached relative error {result.error_after:.3g} (from "
            f"{before:.3g}), above tol = {tol:g} ({message}); the result is in .result",
            result, tolerance=float(tol))
    return result
