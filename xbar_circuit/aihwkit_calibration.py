"""Calibrate IBM aihwkit's IR-drop model against the exact circuit, and export it.

aihwkit (the IBM Analog Hardware Acceleration Kit) models IR drop in its analog forward
pass with two parameters of its ``IOParameters``: ``ir_drop`` (a scale, 0 = off) and
``ir_drop_g_ratio`` (wire conductance from one cell to the next over the maximal device
conductance). This module

- re-implements that model in NumPy (:func:`aihwkit_ir_drop_forward`), following
  ``ForwardBackwardPassIOManaged<T>::applyIrDrop`` and ``computeTotalCurrent`` in
  aihwkit's ``src/rpucuda/rpu_forward_backward_pass.cpp`` (the C++ forward of every
  ``InferenceRPUConfig`` tile);
- computes the exact output of the same weights on a crossbar
  (:func:`exact_tile_output`, through :func:`xbar_circuit.effective_conductance`);
- fits ``ir_drop`` (and optionally ``ir_drop_g_ratio``) per array configuration so that
  aihwkit's output error equals the exact one (:func:`fit_aihwkit_ir_drop`);
- exports the result as an aihwkit ``InferenceRPUConfig``
  (:func:`to_inference_rpu_config`) or as JSON (:func:`export_aihwkit_config`, read back
  in one line by :func:`load_inference_rpu_config`).

aihwkit itself is optional (``pip install 'xbar-circuit[aihwkit]'``); only the two
functions that build an ``InferenceRPUConfig`` import it. See docs/aihwkit.md.

The model (aihwkit's names; ``w`` is the tile weight in units of the maximal
conductance, ``x`` the input after aihwkit's noise management, ``|x| <= 1``, ``n`` the
tile's number of inputs, input index ``j = 0 … n-1``)::

    a_i  = n / ir_drop_g_ratio · Σ_j |w_ij| |x_j|
    c_i  = a_i (a_i (0.05 a_i − 0.2) + 0.5)
    x'_j = x_j (1 − (1 − j/n)²)
    y_i  = Σ_j w_ij x_j − ir_drop · c_i · Σ_j w_ij x'_j

Input 0 gets no drop at all and input n-1 the most, the voltage profile of a bit line
whose sense amplifier sits next to input 0 (aihwkit's docstring says "the first input is
farthest away from the output channel"; the code does the opposite, and this module
follows the code). With ``ir_drop_g_ratio = 1 / (r_wire · g_max)`` the leading term
``c_i ≈ a_i / 2`` is the first-order column-wire (bit-line) drop; the row-wire drop
along the outputs is not modelled, which is why the physical setting ``ir_drop = 1``
under-predicts the exact loss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from .effective import effective_conductance
from .errors import InputError, MissingDependencyError, SpecError
from .spec import Crossbar

__all__ = [
    "AIHWKIT_SOURCE",
    "AIHWKIT_DEFAULT_G_RATIO",
    "AihwkitCalibration",
    "aihwkit_ir_drop_forward",
    "aihwkit_tile_forward",
    "exact_tile_geff",
    "exact_tile_output",
    "output_error",
    "physical_g_ratio",
    "fit_aihwkit_ir_drop",
    "to_inference_rpu_config",
    "export_aihwkit_config",
    "load_inference_rpu_config",
    "require_aihwkit",
]

AIHWKIT_SOURCE = (
    "aihwkit src/rpucuda/rpu_forward_backward_pass.cpp: "
    "ForwardBackwardPassIOManaged<T>::applyIrDrop and computeTotalCurrent"
)
"""Where the re-implemented model comes from."""

AIHWKIT_DEFAULT_G_RATIO = 1.0 / 0.35 / 5e-6
"""aihwkit's default ``IOParameters.ir_drop_g_ratio`` (0.35 ohm, 5 µS; ``aihwkit_ir_drop``
preset of :mod:`xbar_circuit.presets`)."""

JSON_FORMAT = "xbar-circuit/aihwkit-ir-drop/1"
INSTALL_HINT = "pip install 'xbar-circuit[aihwkit]'"

Rows = Literal["aihwkit", "natural"]


# ----------------------------------------------------------------------------- aihwkit
def require_aihwkit(purpose: str) -> Any:
    """Import aihwkit or raise :class:`MissingDependencyError` naming the extra.

    Parameters
    ----------
    purpose : str
        What needs aihwkit, completing "... needs aihwkit".

    Returns
    -------
    module
        The ``aihwkit.simulator.configs`` module.
    """
    try:
        import aihwkit.simulator.configs as configs
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs aihwkit, which is not installed ({exc}); install it with "
            f"{INSTALL_HINT}",
            extra="aihwkit",
        ) from exc
    return configs


# ------------------------------------------------------------------------------ checks
def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(val) or val < 0 or (val == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SpecError(f"{name} must be finite and {bound}, got {value!r}")
    return val


def _real(name: str, value: ArrayLike) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an array of real numbers: {exc}") from None


def _weights(weights: ArrayLike) -> np.ndarray:
    w = _real("weights", weights)
    if w.ndim != 2 or 0 in w.shape:
        raise InputError(f"weights must be a non-empty (K, O) matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise InputError("weights must be finite")
    if np.max(np.abs(w)) > 1 + 1e-12:
        raise InputError("weights must lie in [-1, 1] (units of g_max); scale the tile "
                         f"first (max |w| = {np.max(np.abs(w)):.6g})")
    return w


def _inputs(x: ArrayLike, k: int) -> np.ndarray:
    arr = _real("inputs", x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != k:
        raise InputError(f"inputs must have shape (B, {k}) or ({k},), got {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise InputError("inputs must be finite")
    return arr


# ------------------------------------------------------------------------------- model
def physical_g_ratio(r_wire: float, g_max: float) -> float:
    """aihwkit's ``ir_drop_g_ratio`` of a wire segment ``r_wire`` and a device ``g_max``.

    ``1 / (r_wire · g_max)``: wire conductance between neighbouring cells over the
    maximal device conductance.

    >>> round(physical_g_ratio(0.35, 5e-6))
    571429
    """
    return 1.0 / (_positive("r_wire", r_wire) * _positive("g_max", g_max))


def aihwkit_ir_drop_forward(weights: ArrayLike, x: ArrayLike, *, ir_drop: float = 1.0,
                            ir_drop_g_ratio: float = AIHWKIT_DEFAULT_G_RATIO) -> np.ndarray:
    """aihwkit's one-pass MVM with its IR-drop model, no other non-ideality.

    Follows ``applyIrDrop`` (see :data:`AIHWKIT_SOURCE`) on already prepared inputs
    (noise management, bounds and quantization are not applied here: see
    :func:`aihwkit_tile_forward` for the abs-max noise management).

    Parameters
    ----------
    weights : array_like, shape (K, O)
        Tile weights in units of the maximal conductance, ``|w| <= 1``; this package's
        orientation (aihwkit stores the transpose, ``weights[o][k]``).
    x : array_like, shape (B, K) or (K,)
        Inputs as the tile sees them (aihwkit: after noise management, ``|x| <= 1``).
    ir_drop : float
        aihwkit's ``forward.ir_drop`` (0 = no IR drop).
    ir_drop_g_ratio : float
        aihwkit's ``forward.ir_drop_g_ratio``.

    Returns
    -------
    ndarray, shape (B, O)
        ``x @ w`` less the modelled IR drop.

    Examples
    --------
    >>> w = np.full((4, 2), 0.5)
    >>> bool(np.allclose(aihwkit_ir_drop_forward(w, np.ones(4), ir_drop=0.0), 2.0))
    True
    """
    w = _weights(weights)
    arr = _inputs(x, w.shape[0])
    scale = _positive("ir_drop", ir_drop, allow_zero=True)
    ratio = _positive("ir_drop_g_ratio", ir_drop_g_ratio)
    ideal = arr @ w
    if scale == 0.0:
        return ideal
    n = w.shape[0]
    a = (n / ratio) * (np.abs(arr) @ np.abs(w))           # computeTotalCurrent · n/Gw·gmax
    c = a * (a * (0.05 * a - 0.2) + 0.5)
    p = 1.0 - np.arange(n) / n
    return ideal - scale * c * ((arr * (1.0 - p * p)) @ w)


def aihwkit_tile_forward(weights: ArrayLike, x: ArrayLike, *, ir_drop: float = 1.0,
                         ir_drop_g_ratio: float = AIHWKIT_DEFAULT_G_RATIO) -> np.ndarray:
    """:func:`aihwkit_ir_drop_forward` behind aihwkit's default noise management.

    Each input vector is divided by its largest magnitude (``NoiseManagementType.ABS_MAX``,
    aihwkit's default), passed through the model, and the output multiplied back; an
    all-zero vector gives zeros. Inputs of any scale are accepted.
    """
    w = _weights(weights)
    arr = _inputs(x, w.shape[0])
    scale = np.max(np.abs(arr), axis=1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    y = aihwkit_ir_drop_forward(w, arr / safe, ir_drop=ir_drop, ir_drop_g_ratio=ir_drop_g_ratio)
    return np.where(scale > 0, y * safe, 0.0)


def _physical_order(k: int, rows: Rows) -> np.ndarray:
    if rows == "aihwkit":
        return np.arange(k)[::-1].copy()     # input 0 on the bottom row, next to the sense amps
    if rows == "natural":
        return np.arange(k)
    raise SpecError(f"rows must be 'aihwkit' or 'natural', got {rows!r}")


def _geff(g: np.ndarray, circuit: dict[str, float]) -> np.ndarray:
    if not np.any(g):
        return np.zeros_like(g)
    return effective_conductance(Crossbar(g, r_row=circuit["r_row"], r_col=circuit["r_col"],
                                          r_driver=circuit["r_driver"],
                                          r_sense=circuit["r_sense"]))


_GEFF_CACHE: dict[tuple[Any, ...], np.ndarray] = {}
_GEFF_CACHE_SIZE = 64


def exact_tile_geff(weights: ArrayLike, *, r_row: float, r_col: float, g_max: float,
                    g_off: float = 0.0, r_driver: float = 0.0, r_sense: float = 0.0,
                    rows: Rows = "aihwkit") -> np.ndarray:
    """The exact (K, O) map of aihwkit's inputs to outputs, ``y = x @ map``.

    See :func:`exact_tile_output`. The last results are cached by the weights' bytes and
    the circuit, so fitting and evaluating the same tiles solves them once.
    """
    w = _weights(weights)
    gmax = _positive("g_max", g_max)
    goff = _positive("g_off", g_off, allow_zero=True)
    if goff >= gmax:
        raise SpecError(f"g_off ({goff}) must be below g_max ({gmax})")
    circuit = {"r_row": _positive("r_row", r_row, allow_zero=True),
               "r_col": _positive("r_col", r_col, allow_zero=True),
               "r_driver": _positive("r_driver", r_driver, allow_zero=True),
               "r_sense": _positive("r_sense", r_sense, allow_zero=True)}
    order = _physical_order(w.shape[0], rows)
    key = (w.shape, hashlib.sha1(w.tobytes()).hexdigest(), gmax, goff, rows,
           *sorted(circuit.items()))
    hit = _GEFF_CACHE.get(key)
    if hit is not None:
        return hit
    phys = np.empty_like(w)
    phys[order] = w                                   # physical row order[j] holds input j
    step = gmax - goff
    g_pos = goff + np.maximum(phys, 0.0) * step
    g_neg = goff + np.maximum(-phys, 0.0) * step
    geff = ((_geff(g_pos, circuit) - _geff(g_neg, circuit)) / step)[order]
    geff.setflags(write=False)
    if len(_GEFF_CACHE) >= _GEFF_CACHE_SIZE:
        _GEFF_CACHE.pop(next(iter(_GEFF_CACHE)))
    _GEFF_CACHE[key] = geff
    return geff


def exact_tile_output(weights: ArrayLike, x: ArrayLike, *, r_row: float, r_col: float,
                      g_max: float, g_off: float = 0.0, r_driver: float = 0.0,
                      r_sense: float = 0.0, rows: Rows = "aihwkit") -> np.ndarray:
    """The exact circuit's output for aihwkit's tile ``weights`` and inputs ``x``.

    The tile is a K x O crossbar pair (drivers at the left, sense amplifiers at the
    bottom, docs/convention.md): ``G⁺ = g_off + max(w, 0) (g_max − g_off)`` and
    ``G⁻ = g_off + max(−w, 0) (g_max − g_off)``, both solved exactly for ``G_eff`` and
    subtracted, input voltages ``x`` (the circuit is linear, so the read voltage
    cancels). The result is in the units of ``x @ w``.

    Parameters
    ----------
    weights, x
        As in :func:`aihwkit_ir_drop_forward`.
    r_row, r_col : float
        Wire resistance per cell segment (ohms).
    g_max, g_off : float
        Conductance of ``|w| = 1`` and of ``w = 0`` (siemens).
    r_driver, r_sense : float
        Periphery resistances (ohms).
    rows : {"aihwkit", "natural"}
        ``"aihwkit"`` (default): input 0 on the row next to the sense amplifiers, where
        aihwkit's model puts it (no drop); ``"natural"``: input j on row j.
    """
    w = _weights(weights)
    arr = _inputs(x, w.shape[0])
    return arr @ exact_tile_geff(w, r_row=r_row, r_col=r_col, g_max=g_max, g_off=g_off,
                                 r_driver=r_driver, r_sense=r_sense, rows=rows)


def output_error(y: ArrayLike, y_ideal: ArrayLike) -> float:
    """Relative output error ``‖y − y_ideal‖ / ‖y_ideal‖`` (Frobenius norms; 0 if both 0)."""
    a, b = _real("y", y), _real("y_ideal", y_ideal)
    if a.shape != b.shape:
        raise InputError(f"y and y_ideal must have the same shape, got {a.shape} and "
                         f"{b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("y and y_ideal must be finite")
    den = float(np.linalg.norm(b))
    num = float(np.linalg.norm(a - b))
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


# --------------------------------------------------------------------------------- fit
@dataclasses.dataclass(frozen=True)
class AihwkitCalibration:
    """Fitted aihwkit IR-drop parameters of one array configuration.

    Attributes
    ----------
    ir_drop, ir_drop_g_ratio : float
        The fitted aihwkit ``forward.ir_drop`` and ``forward.ir_drop_g_ratio``.
    rows, cols : int
        Largest tile (aihwkit ``mapping.max_input_size`` / ``max_output_size``).
    r_row, r_col, g_max, g_off, r_driver, r_sense : float
        The circuit the fit is for.
    objective : str
        ``"error"`` (aihwkit's output error equals the exact one) or ``"output"``
        (least squares of aihwkit's outputs against the exact outputs).
    error_exact : float
        Exact output error ``‖y_exact − y_ideal‖ / ‖y_ideal‖`` on the fit data.
    error_before, error_after : float
        aihwkit's output error with the physical parameters (``ir_drop = 1``,
        ``ir_drop_g_ratio = 1 / (r_col g_max)``) and with the fitted ones.
    mismatch_before, mismatch_after : float
        ``‖y_aihwkit − y_exact‖ / ‖y_exact − y_ideal‖``: how much of the exact error
        aihwkit's outputs miss (1 = no IR drop at all, 0 = the exact outputs).
    n_tiles, n_vectors : int
        Size of the fit data.
    label : str
        Free text naming what was fitted (e.g. a layer), kept in the export.
    """

    ir_drop: float
    ir_drop_g_ratio: float
    rows: int
    cols: int
    r_row: float
    r_col: float
    g_max: float
    g_off: float
    r_driver: float
    r_sense: float
    objective: str
    error_exact: float
    error_before: float
    error_after: float
    mismatch_before: float
    mismatch_after: float
    n_tiles: int
    n_vectors: int
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON types."""
        return dataclasses.asdict(self)

    def circuit(self) -> dict[str, float]:
        """The circuit keywords of :func:`exact_tile_output` this fit is for."""
        return {"r_row": self.r_row, "r_col": self.r_col, "g_max": self.g_max,
                "g_off": self.g_off, "r_driver": self.r_driver, "r_sense": self.r_sense}

    def evaluate(self, weights: np.ndarray | Sequence[ArrayLike],
                 inputs: np.ndarray | Sequence[ArrayLike], *,
                 rows: Rows = "aihwkit") -> dict[str, float]:
        """Errors of aihwkit before and after this calibration on other tiles.

        Returns ``error_exact``, ``error_before`` / ``error_after`` (aihwkit's output error
        with the physical and with the fitted parameters) and ``mismatch_before`` /
        ``mismatch_after`` (see the class), pooled over the tiles given.
        """
        tiles = _prepare(weights, inputs, self.circuit(), rows)
        return _compare(tiles, [("before", 1.0, physical_g_ratio(
            self.r_col if self.r_col > 0 else self.r_row, self.g_max)),
            ("after", self.ir_drop, self.ir_drop_g_ratio)])


@dataclasses.dataclass
class _Tile:
    w: np.ndarray
    x: np.ndarray
    y_ideal: np.ndarray
    y_exact: np.ndarray
    xn: np.ndarray          # noise-managed inputs
    scale: np.ndarray       # per-vector abs-max


def _prepare(weights: np.ndarray | Sequence[ArrayLike], inputs: np.ndarray | Sequence[ArrayLike],
             circuit: dict[str, Any], rows: Rows) -> list[_Tile]:
    if isinstance(weights, np.ndarray) and weights.ndim == 2:
        w_list: list[ArrayLike] = [weights]
        x_list: list[ArrayLike] = [np.asarray(inputs)]
    else:
        w_list, x_list = list(weights), list(inputs)
        if len(w_list) != len(x_list):
            raise InputError(f"{len(w_list)} weight tiles but {len(x_list)} input sets")
    if not w_list:
        raise InputError("no tiles to fit")
    tiles = []
    for w_raw, x_raw in zip(w_list, x_list, strict=True):
        w = _weights(w_raw)
        x = _inputs(x_raw, w.shape[0])
        scale = np.max(np.abs(x), axis=1, keepdims=True)
        keep = scale[:, 0] > 0
        x, scale = x[keep], scale[keep]
        if len(x) == 0:
            continue
        tiles.append(_Tile(w, x, x @ w, exact_tile_output(w, x, rows=rows, **circuit),
                           x / scale, scale))
    if not tiles:
        raise InputError("every input vector is zero: nothing to fit")
    return tiles


def _compare(tiles: list[_Tile], settings: list[tuple[str, float, float]]) -> dict[str, float]:
    ideal = np.concatenate([t.y_ideal.ravel() for t in tiles])
    exact = np.concatenate([t.y_exact.ravel() for t in tiles])
    norm_ideal = float(np.linalg.norm(ideal))
    drop = float(np.linalg.norm(exact - ideal))
    out = {"error_exact": drop / norm_ideal if norm_ideal > 0 else math.nan}
    for label, s, ratio in settings:
        y = _model(tiles, s, ratio)
        out[f"error_{label}"] = float(np.linalg.norm(y - ideal)) / norm_ideal \
            if norm_ideal > 0 else math.nan
        out[f"mismatch_{label}"] = float(np.linalg.norm(y - exact)) / drop \
            if drop > 0 else math.nan
    return out


def _model(tiles: list[_Tile], ir_drop: float, ratio: float) -> np.ndarray:
    return np.concatenate([
        (aihwkit_ir_drop_forward(t.w, t.xn, ir_drop=ir_drop, ir_drop_g_ratio=ratio)
         * t.scale).ravel() for t in tiles])


def fit_aihwkit_ir_drop(weights: np.ndarray | Sequence[ArrayLike],
                        inputs: np.ndarray | Sequence[ArrayLike], *, r_row: float,
                        r_col: float, g_max: float, g_off: float = 0.0,
                        r_driver: float = 0.0, r_sense: float = 0.0,
                        rows: Rows = "aihwkit", tile_rows: int | None = None,
                        tile_cols: int | None = None, objective: str = "error",
                        fit_g_ratio: bool = False, label: str = "") -> AihwkitCalibration:
    """Fit aihwkit's ``ir_drop`` so that its forward reproduces the exact output error.

    One array configuration (tile size, wires, conductance range) gets one pair of
    parameters, fitted on all the tiles given together.

    Parameters
    ----------
    weights : (K, O) array or sequence of them
        Tile weights in units of ``g_max`` (``|w| <= 1``); each a tile aihwkit would
        hold (its K inputs are aihwkit's ``n``).
    inputs : (B, K) array or sequence of them
        Inputs of each tile (any scale: aihwkit's abs-max noise management is applied).
    r_row, r_col, g_max, g_off, r_driver, r_sense, rows
        The circuit, as in :func:`exact_tile_output`.
    tile_rows, tile_cols : int, optional
        The configuration's largest tile, written to the export as aihwkit's
        ``mapping.max_input_size`` / ``max_output_size`` (default: the largest given).
    objective : {"error", "output"}
        ``"error"`` (default): bracketed root of ``error_aihwkit(ir_drop) = error_exact``
        (scipy ``brentq``; the error grows monotonically with ``ir_drop``).
        ``"output"``: least squares of aihwkit's outputs against the exact outputs
        (scipy ``least_squares``).
    fit_g_ratio : bool
        With ``objective="output"``, fit ``ir_drop_g_ratio`` too (it sets the curvature
        of the model in the total current); otherwise it stays ``1 / (r_col g_max)``.
    label : str
        Kept in the result and the export (e.g. the layer's name).

    Returns
    -------
    AihwkitCalibration

    Raises
    ------
    SpecError
        Bad circuit values or options.
    InputError
        Bad weights or inputs, mismatched tile lists, or no drop to fit.
    """
    from scipy.optimize import brentq, least_squares

    if objective not in ("error", "output"):
        raise SpecError(f"objective must be 'error' or 'output', got {objective!r}")
    if fit_g_ratio and objective != "output":
        raise SpecError("fit_g_ratio needs objective='output' (one error value cannot fix "
                        "two parameters)")
    circuit = {"r_row": r_row, "r_col": r_col, "g_max": g_max, "g_off": g_off,
               "r_driver": r_driver, "r_sense": r_sense}
    tiles = _prepare(weights, inputs, circuit, rows)
    ideal = np.concatenate([t.y_ideal.ravel() for t in tiles])
    exact = np.concatenate([t.y_exact.ravel() for t in tiles])
    norm_ideal = float(np.linalg.norm(ideal))
    drop = float(np.linalg.norm(exact - ideal))
    if norm_ideal == 0 or drop == 0:
        raise InputError("the exact circuit shows no error on these tiles (zero output or "
                         "no wire resistance): nothing to fit")
    err_exact = drop / norm_ideal
    ratio0 = physical_g_ratio(r_col if r_col > 0 else r_row, g_max)

    def err(s: float, ratio: float = ratio0) -> float:
        return float(np.linalg.norm(_model(tiles, s, ratio) - ideal)) / norm_ideal

    ratio = ratio0
    if objective == "error":
        if err(1.0) == 0:
            raise InputError("aihwkit's model gives no drop on these inputs")
        hi = 1.0
        while err(hi) < err_exact:
            hi *= 4.0
            if hi > 1e9:
                raise InputError("no ir_drop up to 1e9 reaches the exact error")
        s = float(brentq(lambda v: err(v) - err_exact, 0.0, hi, xtol=1e-12, rtol=1e-12))
    else:
        def resid(p: np.ndarray) -> np.ndarray:
            r = ratio0 * math.exp(p[1]) if fit_g_ratio else ratio0
            return (_model(tiles, math.exp(p[0]), r) - exact) / drop

        p0 = np.zeros(2 if fit_g_ratio else 1)
        if fit_g_ratio:
            p0[1] = 0.0
        sol = least_squares(resid, p0, method="lm" if len(p0) <= ideal.size else "trf")
        s = math.exp(float(sol.x[0]))
        if fit_g_ratio:
            ratio = ratio0 * math.exp(float(sol.x[1]))

    def mismatch(s_: float, ratio_: float) -> float:
        return float(np.linalg.norm(_model(tiles, s_, ratio_) - exact)) / drop

    return AihwkitCalibration(
        ir_drop=s, ir_drop_g_ratio=ratio,
        rows=int(tile_rows or max(t.w.shape[0] for t in tiles)),
        cols=int(tile_cols or max(t.w.shape[1] for t in tiles)),
        r_row=float(r_row), r_col=float(r_col), g_max=float(g_max), g_off=float(g_off),
        r_driver=float(r_driver), r_sense=float(r_sense), objective=objective,
        error_exact=err_exact, error_before=err(1.0, ratio0), error_after=err(s, ratio),
        mismatch_before=mismatch(1.0, ratio0), mismatch_after=mismatch(s, ratio),
        n_tiles=len(tiles), n_vectors=sum(len(t.x) for t in tiles), label=str(label))


# ------------------------------------------------------------------------------ export
def _params(calibration: AihwkitCalibration | dict[str, Any]) -> dict[str, Any]:
    data = calibration.to_dict() if isinstance(calibration, AihwkitCalibration) else calibration
    try:
        return {"ir_drop": float(data["ir_drop"]),
                "ir_drop_g_ratio": float(data["ir_drop_g_ratio"]),
                "max_input_size": int(data["rows"]), "max_output_size": int(data["cols"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not an aihwkit calibration: {exc!r}") from None


def to_inference_rpu_config(calibration: AihwkitCalibration | dict[str, Any],
                            base: Any = None) -> Any:
    """An aihwkit ``InferenceRPUConfig`` with the fitted IR-drop parameters.

    Sets ``forward.ir_drop``, ``forward.ir_drop_g_ratio``, the tile size the fit is
    for (``mapping.max_input_size`` / ``max_output_size``: aihwkit's model depends on a
    tile's number of inputs) and ``mapping.weight_scaling_omega = 1`` (per tile, not
    column-wise: the fit puts each tile's largest weight at ``g_max``, and the model
    depends on the weights' scale). Everything else is ``base``'s (a copy) or aihwkit's
    default.

    Raises
    ------
    MissingDependencyError
        aihwkit is not installed (an ``ImportError``; the message names
        ``pip install 'xbar-circuit[aihwkit]'``).
    """
    params = _params(calibration)
    configs = require_aihwkit("to_inference_rpu_config")
    import copy

    config = configs.InferenceRPUConfig() if base is None else copy.deepcopy(base)
    config.forward.ir_drop = params["ir_drop"]
    config.forward.ir_drop_g_ratio = params["ir_drop_g_ratio"]
    config.mapping.max_input_size = params["max_input_size"]
    config.mapping.max_output_size = params["max_output_size"]
    # the fit puts each tile's largest |weight| at g_max
    config.mapping.weight_scaling_omega = 1.0
    config.mapping.weight_scaling_columnwise = False
    return config


def export_aihwkit_config(calibration: AihwkitCalibration | Sequence[AihwkitCalibration],
                          path: str | Path) -> Path:
    """Write one or more calibrations as JSON that :func:`load_inference_rpu_config` reads.

    The file holds ``{"format", "source", "configs": [{"forward": {...}, "mapping":
    {...}, "fit": {...}}, ...]}``; ``forward`` and ``mapping`` are aihwkit field names
    and values, ``fit`` the circuit and the errors of the fit. aihwkit is not needed to
    write it. Loading it back is one line::

        rpu_config = load_inference_rpu_config("aihwkit_ir_drop.json")

    or, without xbar-circuit, with aihwkit alone::

        c = InferenceRPUConfig(); [setattr(getattr(c, g), k, v) for g in ("forward", "mapping") for k, v in json.load(open("aihwkit_ir_drop.json"))["configs"][0][g].items()]
    """  # noqa: E501
    cals = [calibration] if isinstance(calibration, AihwkitCalibration) else list(calibration)
    if not cals or not all(isinstance(c, AihwkitCalibration) for c in cals):
        raise InputError("export_aihwkit_config takes AihwkitCalibration objects")
    entries = []
    for cal in cals:
        p = _params(cal)
        entries.append({
            "forward": {"ir_drop": p["ir_drop"], "ir_drop_g_ratio": p["ir_drop_g_ratio"]},
            "mapping": {"max_input_size": p["max_input_size"],
                        "max_output_size": p["max_output_size"]},
            "fit": cal.to_dict()})
    out = Path(path)
    out.write_text(json.dumps({"format": JSON_FORMAT, "source": AIHWKIT_SOURCE,
                               "configs": entries}, indent=2) + "\n")
    return out


def load_inference_rpu_config(path: str | Path, *, rows: int | None = None,
                              label: str | None = None, base: Any = None) -> Any:
    """Read :func:`export_aihwkit_config`'s JSON into an aihwkit ``InferenceRPUConfig``.

    Parameters
    ----------
    path : str or Path
        The JSON file.
    rows : int, optional
        Which configuration (by tile rows) when the file holds several; default the
        only (or first) one.
    label : str, optional
        Which configuration by its label (with ``rows``: both must match).
    base : InferenceRPUConfig, optional
        Start from a copy of this config instead of aihwkit's default.

    Raises
    ------
    InputError
        Not such a file, or no configuration with ``rows``.
    MissingDependencyError
        aihwkit is not installed.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read aihwkit calibration {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise InputError(f"{path} is not an xbar-circuit aihwkit calibration "
                         f"(format {JSON_FORMAT!r} expected)")
    entries = data.get("configs") or []
    if not isinstance(entries, list):
        raise InputError(f"{path}: 'configs' must be a list of configurations, got "
                         f"{type(entries).__name__}")
    try:
        entries = [{"ir_drop": e["forward"]["ir_drop"],
                    "ir_drop_g_ratio": e["forward"]["ir_drop_g_ratio"],
                    "rows": e["mapping"]["max_input_size"],
                    "cols": e["mapping"]["max_output_size"],
                    "label": (e.get("fit") or {}).get("label")} for e in entries]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: malformed configuration entry ({type(exc).__name__}: "
                         f"{exc!s}); expected forward.ir_drop, forward.ir_drop_g_ratio, "
                         "mapping.max_input_size, mapping.max_output_size") from None
    if rows is not None:
        entries = [e for e in entries if e["rows"] == rows]
    if label is not None:
        entries = [e for e in entries if e["label"] == label]
    if not entries:
        want = [f"{rows} rows" if rows is not None else "", f"label {label!r}" if label else ""]
        raise InputError(f"{path} has no calibration" + (" for " + ", ".join(
            w for w in want if w) if any(want) else ""))
    return to_inference_rpu_config(entries[0], base=base)
