"""Circuit evaluation of a mapped layer: effective conductances, layer outputs and NF.

A linear crossbar computes ``I = V · G_eff`` exactly (DESIGN.md §1), so each tile is
solved once for its (M, N) effective conductance matrix and every batch of inputs is
then one matrix product. :func:`effective_conductance` uses
``xbar_circuit.effective.effective_conductance`` when that module exists, else M
unit-input solves of :func:`xbar_circuit.solve`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..api import solve
from ..spec import Crossbar
from .layout import MappedLayer, Tile
from .quantize import MappingError, QuantizedInputs, quantize_inputs

__all__ = [
    "CircuitParams",
    "effective_conductance",
    "tile_crossbar",
    "tile_effective_conductance",
    "layer_output",
    "integer_output",
    "tile_nf",
    "layer_nf",
    "NFReport",
    "load_lut",
]


@dataclass(frozen=True)
class CircuitParams:
    """Parasitic resistances shared by every tile, in ohms.

    Parameters
    ----------
    r_row, r_col : float
        Wire resistance of one row / column segment (one per cell), in ohms.
    r_driver, r_sense : float
        Driver output resistance and sense resistance to virtual ground, in ohms.
    backend : str
        Solver backend used for G_eff and the search objective.
    """

    r_row: float = 1.0
    r_col: float = 1.0
    r_driver: float = 0.0
    r_sense: float = 0.0
    backend: str = "nodal"

    def __post_init__(self) -> None:
        for name in ("r_row", "r_col", "r_driver", "r_sense"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise MappingError(f"{name} must be a finite number of ohms >= 0, got {value!r}")

    @property
    def is_ideal(self) -> bool:
        """True when every resistance is zero."""
        return self.r_row == self.r_col == self.r_driver == self.r_sense == 0.0

    def crossbar(self, conductance: ArrayLike) -> Crossbar:
        """The :class:`Crossbar` of a conductance matrix under these parasitics."""
        return Crossbar(conductance, r_row=self.r_row, r_col=self.r_col,
                        r_driver=self.r_driver, r_sense=self.r_sense)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


IDEAL = CircuitParams(0.0, 0.0, 0.0, 0.0)


def effective_conductance(crossbar: Crossbar, backend: str = "nodal", block: int = 64
                          ) -> np.ndarray:
    """Exact (M, N) effective conductance, ``I = V · G_eff`` for every input V.

    Uses ``xbar_circuit.effective.effective_conductance`` when importable (the fast
    path), otherwise solves the M unit inputs in blocks of ``block`` rows.

    Parameters
    ----------
    crossbar : Crossbar
    backend : str
        Backend for the fallback solves.
    block : int
        Unit inputs per solve call (memory grows as block·M·N).

    Returns
    -------
    ndarray, shape (M, N)
        Siemens: row i is the column current per volt applied on row i alone.
    """
    if crossbar.is_ideal:
        return np.array(crossbar.conductance)
    if backend == "nodal":
        try:
            from ..effective import effective_conductance as fast  # type: ignore[import-not-found]
        except ImportError:
            fast = None
        if fast is not None:
            return np.asarray(fast(crossbar), dtype=np.float64)
    m = crossbar.n_rows
    out = np.empty(crossbar.shape)
    eye = np.eye(m)
    for start in range(0, m, block):
        stop = min(m, start + block)
        out[start:stop] = solve(crossbar, eye[start:stop], backend=backend).column_currents
    return out


def tile_crossbar(tile: Tile, circuit: CircuitParams) -> Crossbar:
    """The :class:`Crossbar` of one tile under ``circuit``."""
    return circuit.crossbar(tile.conductance)


def tile_effective_conductance(tile: Tile, circuit: CircuitParams) -> np.ndarray:
    """G_eff of a tile (cached on the tile per circuit), in siemens; (R, C)."""
    key = ("geff", circuit.r_row, circuit.r_col, circuit.r_driver, circuit.r_sense,
           circuit.backend)
    if key not in tile.cache:
        tile.cache[key] = (np.array(tile.conductance) if circuit.is_ideal else
                           effective_conductance(tile_crossbar(tile, circuit), circuit.backend))
    return tile.cache[key]


def _tile_response(tile: Tile, circuit: CircuitParams | None, method: str):
    """Return ``f(V (B, R)) -> I (B, C)`` for a tile."""
    if circuit is None or circuit.is_ideal:
        g = tile.conductance
        return lambda v: v @ g
    if method == "geff":
        g_eff = tile_effective_conductance(tile, circuit)
        return lambda v: v @ g_eff
    if method == "solve":
        xbar = tile_crossbar(tile, circuit)
        return lambda v: np.atleast_2d(solve(xbar, v, backend=circuit.backend).column_currents)
    raise MappingError(f"method must be 'geff' or 'solve', got {method!r}")


def _digit_sums(layer: MappedLayer, tile: Tile, x_int: np.ndarray, response) -> np.ndarray:
    """Per-column digit-sum estimates Σ_i x_i d_ij of one tile, (B, C), from its currents."""
    cfg = layer.config
    g0, dg = cfg.level_array[0], cfg.g_step
    real = tile.rows >= 0
    xt = np.zeros((x_int.shape[0], tile.rows.size), dtype=np.int64)
    xt[:, real] = x_int[:, tile.rows[real]]
    if cfg.input_mode == "dac":
        v_unit = cfg.v_read / (2**cfg.input_bits - 1)
        v = xt * v_unit
        current = response(v)
        return (current - g0 * v.sum(axis=1, keepdims=True)) / (dg * v_unit)
    total = np.zeros((xt.shape[0], tile.shape[1]))
    for sign, part in ((1, np.maximum(xt, 0)), (-1, np.maximum(-xt, 0))):
        if not part.any():
            continue
        for bit in range(cfg.input_bits):
            plane = (part >> bit) & 1
            if not plane.any():
                continue
            v = plane * cfg.v_read
            current = response(v)
            sums = (current - g0 * v.sum(axis=1, keepdims=True)) / (dg * cfg.v_read)
            total += sign * (2.0**bit) * sums
    return total


def integer_output(layer: MappedLayer, x: ArrayLike | QuantizedInputs,
                   circuit: CircuitParams | None = None, method: str = "geff") -> np.ndarray:
    """Recombined integer-domain output ``≈ x_int @ q`` of the mapped layer, (B, O).

    With ``circuit=None`` (or all resistances zero) the value equals the integer
    product exactly up to float rounding (round it to get the integers).

    Parameters
    ----------
    layer : MappedLayer
    x : array_like (B, K) of int, or QuantizedInputs
        Integer inputs ``|x| <= 2**input_bits - 1``.
    circuit : CircuitParams, optional
        Parasitics; None is the ideal circuit.
    method : {"geff", "solve"}
        Tile currents from the cached effective conductance or by solving each batch.

    Returns
    -------
    ndarray, shape (B, O)
    """
    cfg = layer.config
    x_int = x.q if isinstance(x, QuantizedInputs) else np.atleast_2d(np.asarray(x))
    if x_int.ndim != 2 or x_int.shape[1] != layer.shape[0]:
        raise MappingError(f"inputs must have shape (B, {layer.shape[0]}), got {np.shape(x_int)}")
    if not np.issubdtype(x_int.dtype, np.integer):
        if not np.all(np.isfinite(x_int)) or np.any(x_int != np.rint(x_int)):
            raise MappingError("integer inputs must be finite whole numbers")
        x_int = x_int.astype(np.int64)
    limit = 2**cfg.input_bits - 1
    if np.abs(x_int).max(initial=0) > limit:
        raise MappingError(f"integer inputs exceed {cfg.input_bits} bits (|x| <= {limit})")
    batch, (_, o) = x_int.shape[0], layer.shape
    y = np.zeros((batch, o))
    for tile in layer.tiles:
        sums = _digit_sums(layer, tile, x_int, _tile_response(tile, circuit, method))
        real = tile.real_columns
        weight = tile.polarity * (2.0 ** (cfg.bits_per_cell * tile.col_slice[real]))
        np.add.at(y.T, tile.col_output[real], (sums[:, real] * weight).T)
    if cfg.offset:
        y -= cfg.offset * x_int.sum(axis=1, keepdims=True)
    return y


def layer_output(layer: MappedLayer, x: ArrayLike, circuit: CircuitParams | None = None, *,
                 method: str = "geff", input_scale: float | str = "dynamic") -> np.ndarray:
    """The layer output ``y ≈ x @ W + b`` computed through the mapped circuits.

    Parameters
    ----------
    layer : MappedLayer
    x : array_like, shape (K,) or (B, K)
        Real inputs, quantized to ``config.input_bits`` with ``input_scale``.
    circuit : CircuitParams, optional
        Parasitic resistances; None gives the ideal (quantized) output.
    method : {"geff", "solve"}
        Exact effective conductance of each tile (cached) or a solve per call.
    input_scale : float or "dynamic"
        See :func:`~xbar_circuit.mapping.quantize_inputs`.

    Returns
    -------
    ndarray, shape (B, O), or (O,) for a single input vector.
    """
    single = np.ndim(x) == 1
    qi = quantize_inputs(x, layer.config.input_bits, input_scale)
    y = integer_output(layer, qi, circuit, method) * qi.scale[:, None] * layer.weights.scale
    if layer.bias is not None:
        y = y + layer.bias
    return y[0] if single else y


# ------------------------------------------------------------------------- NF
def _stimulus(layer: MappedLayer, tile: Tile, x_int: np.ndarray | None) -> np.ndarray:
    """Row voltages (B, R) of a tile: all real rows at v_read, or DAC voltages of x_int."""
    cfg = layer.config
    real = tile.rows >= 0
    if x_int is None:
        return np.where(real, cfg.v_read, 0.0)[None, :]
    v = np.zeros((x_int.shape[0], tile.rows.size))
    v[:, real] = np.abs(x_int[:, tile.rows[real]]) * (cfg.v_read / (2**cfg.input_bits - 1))
    return v


def _nf_from_currents(ideal: np.ndarray, actual: np.ndarray, real: np.ndarray) -> dict[str, float]:
    ideal, actual = ideal[:, real], actual[:, real]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = np.where(ideal > 0, (ideal - actual) / np.where(ideal > 0, ideal, 1.0), np.nan)
        per_input = np.nanmean(cols, axis=1) if np.any(ideal > 0) else np.array([np.nan])
        agg = (ideal - actual).sum(axis=1) / ideal.sum(axis=1)
        rel = np.linalg.norm(actual - ideal, axis=1) / np.linalg.norm(ideal, axis=1)
    return {"nf": float(np.nanmean(per_input)), "nf_aggregate": float(np.nanmean(agg)),
            "relative_error": float(np.nanmean(rel)), "column_nf": np.nanmean(cols, axis=0)}


def _resolve_tile(layer: MappedLayer, tile: Tile | int) -> Tile:
    """The tile itself, or ``layer.tiles[tile]`` for a valid index (MappingError else)."""
    if isinstance(tile, Tile):
        return tile
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)):
        raise MappingError(f"tile must be a Tile or an integer index, got {type(tile).__name__}")
    n = len(layer.tiles)
    if not 0 <= int(tile) < n:
        raise MappingError(f"tile index {int(tile)} is out of range: the layer has {n} tile(s) "
                           f"(indices 0 to {n - 1})")
    return layer.tiles[int(tile)]


def tile_nf(layer: MappedLayer, tile: Tile | int, circuit: CircuitParams,
            x_int: np.ndarray | None = None) -> dict[str, Any]:
    """Exact nonideality of one tile (DESIGN.md §2 metrics over its real columns).

    Parameters
    ----------
    layer : MappedLayer
    tile : Tile or int
        The tile or its index in ``layer.tiles``.
    circuit : CircuitParams
    x_int : ndarray (B, K) of int, optional
        Integer layer inputs; their magnitudes drive the rows as DAC voltages. None
        drives every real row at ``v_read`` (the "all-on" array NF).

    Returns
    -------
    dict
        ``nf`` (mean column NF over real columns with I_ideal > 0, averaged over the
        batch), ``nf_aggregate``, ``relative_error`` and ``column_nf`` (C_real,).
    """
    tile = _resolve_tile(layer, tile)
    if x_int is not None:
        x_int = np.asarray(x_int)
        if x_int.ndim != 2 or x_int.shape[1] != layer.shape[0]:
            raise MappingError(f"integer inputs must have shape (B, {layer.shape[0]}) for this "
                               f"layer of K={layer.shape[0]} rows, got {x_int.shape}")
    v = _stimulus(layer, tile, x_int)
    g_eff = tile_effective_conductance(tile, circuit)
    return _nf_from_currents(v @ tile.conductance, v @ g_eff, tile.real_columns)


def load_lut(path: str | None) -> Any:
    """Load a ``xbar_circuit.tables.LookupTable`` or return None when unavailable.

    Returns None when ``path`` is None or the tables package (or its ``LookupTable``
    with ``load`` and ``predict_nf``) does not exist yet.
    """
    if path is None:
        return None
    try:
        from ..tables import LookupTable  # type: ignore[attr-defined]
    except ImportError:
        return None
    if not (hasattr(LookupTable, "load") and hasattr(LookupTable, "predict_nf")):
        return None
    return LookupTable.load(path)


@dataclass
class NFReport:
    """NF of a mapped layer, per tile and for the layer (see :func:`layer_nf`).

    Attributes
    ----------
    tiles : list of dict
        One row per tile: key, density, ``nf_allon`` (exact, every real row at
        v_read), ``nf_inputs`` (exact, under the given inputs, or None), ``nf_lut``
        (lookup-table estimate or None) and ``lut_error = nf_lut - nf_allon``.
    layer_nf_allon, layer_nf_inputs : float
        Mean column NF over every real column of every tile (all-on / inputs).
    lut_available : bool
    """

    tiles: list[dict[str, Any]]
    layer_nf_allon: float
    layer_nf_inputs: float | None
    layer_nf_lut: float | None
    lut_available: bool

    @property
    def lut_mean_abs_error(self) -> float | None:
        """Mean |nf_lut - nf_allon| over tiles (None without a table)."""
        if not self.lut_available:
            return None
        return float(np.mean([abs(t["lut_error"]) for t in self.tiles]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"metric": "nf = mean column (I_ideal - I)/I_ideal over real columns",
                "layer_nf_allon": self.layer_nf_allon, "layer_nf_inputs": self.layer_nf_inputs,
                "layer_nf_lut": self.layer_nf_lut, "lut_available": self.lut_available,
                "lut_mean_abs_error": self.lut_mean_abs_error, "tiles": self.tiles}


def layer_nf(layer: MappedLayer, circuit: CircuitParams, x: ArrayLike | None = None, *,
             lut: Any = None, input_scale: float | str = "dynamic") -> NFReport:
    """Exact NF of every tile (and of the layer), with a lookup-table estimate beside it.

    Parameters
    ----------
    layer : MappedLayer
    circuit : CircuitParams
    x : array_like (B, K), optional
        Real layer inputs; adds the NF under these inputs (DAC voltages of |x|).
    lut : LookupTable, optional
        An object with ``predict_nf(crossbar) -> float`` (``xbar_circuit.tables``);
        None reports the LUT column as unavailable.
    input_scale : float or "dynamic"
        Input quantization scale for ``x``.

    Returns
    -------
    NFReport
    """
    x_int = None if x is None else quantize_inputs(x, layer.config.input_bits, input_scale).q
    if x_int is not None and x_int.shape[1] != layer.shape[0]:
        raise MappingError(f"inputs have {x_int.shape[1]} features per vector but the layer "
                           f"has K={layer.shape[0]} rows; expected shape (B, {layer.shape[0]}) "
                           f"or ({layer.shape[0]},)")
    rows: list[dict[str, Any]] = []
    cols_allon: list[np.ndarray] = []
    cols_inputs: list[np.ndarray] = []
    lut_ok = lut is not None and hasattr(lut, "predict_nf")
    for index, tile in enumerate(layer.tiles):
        allon = tile_nf(layer, tile, circuit)
        cols_allon.append(allon["column_nf"])
        row: dict[str, Any] = {
            "index": index, "key": list(tile.key),
            "density": float((tile.digits[:, tile.real_columns] > 0).mean()),
            "nf_allon": allon["nf"], "nf_inputs": None, "nf_lut": None, "lut_error": None}
        if x_int is not None:
            inp = tile_nf(layer, tile, circuit, x_int)
            cols_inputs.append(inp["column_nf"])
            row["nf_inputs"] = inp["nf"]
        if lut_ok:
            try:
                row["nf_lut"] = float(lut.predict_nf(tile_crossbar(tile, circuit)))
                row["lut_error"] = row["nf_lut"] - row["nf_allon"]
            except Exception as exc:
                row["nf_lut"] = None
                row["lut_error"] = None
                row["lut_message"] = str(exc)
        rows.append(row)
    lut_values = [r["nf_lut"] for r in rows if r["nf_lut"] is not None]
    lut_ok = lut_ok and len(lut_values) == len(rows)
    weights = [int(t.real_columns.sum()) for t in layer.tiles]
    return NFReport(
        tiles=rows,
        layer_nf_allon=float(np.nanmean(np.concatenate(cols_allon))),
        layer_nf_inputs=(float(np.nanmean(np.concatenate(cols_inputs))) if cols_inputs
                         else None),
        layer_nf_lut=(float(np.average(lut_values, weights=weights)) if lut_ok else None),
        lut_available=lut_ok)
