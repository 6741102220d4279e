"""Bit slicing, sign handling, tiling and the physical layout (orientation, row order).

Circuit convention (docs/convention.md §1): drivers at the left end of the rows (column 0 is
nearest the drivers), sense amplifiers at the bottom of the columns (row M-1 is
nearest the sense amps). The corner least affected by wire resistance is the
bottom-left one.

A layer ``y = x @ W`` (W of shape (K, O)) is quantized to signed B-bit integers ``q``.
The sign is kept either as a differential pair of arrays (``q = q⁺ - q⁻``, each stored
with B-1 bits) or with an offset (``u = q + 2**(B-1)`` stored with B bits, and
``offset * Σx`` subtracted digitally). The stored unsigned integers are cut into
slices of ``bits_per_cell`` bits, slice 0 the least significant, and each slice digit
``d`` is programmed as conductance ``levels[d]``. Each tile holds the slices of
``tile_cols // n_slices`` output channels and ``tile_rows`` inputs; the last tiles
are padded (padded rows get 0 V, padded cells sit at ``levels[0]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .quantize import MappingError, QuantizedWeights, _check_int, as_matrix, quantize_weights

__all__ = [
    "MappingConfig",
    "Tile",
    "MappedLayer",
    "map_layer",
    "COLUMN_ORDERS",
    "ROW_ORDERS",
    "PRESETS",
    "row_scores",
]

COLUMN_ORDERS: dict[str, str] = {
    "interleaved": "per output channel its slices side by side, most significant first "
                   "(the naive layout, as the number is written)",
    "planes_low_first": "bit plane by bit plane, the least significant plane nearest the "
                        "drivers (MDM orientation)",
    "planes_high_first": "bit plane by bit plane, the most significant plane nearest the "
                         "drivers (the paper-like baseline orientation)",
    "bit_weight": "columns sorted by bit weight times digit sum (2**(b*slice) * sum of the "
                  "column's digits), the heaviest nearest the drivers",
}
"""Column orders of a tile, by name."""

ROW_ORDERS: dict[str, str] = {
    "natural": "inputs in their natural order, input 0 at the top (row 0)",
    "mdm": "rows sorted by (activity-weighted) number of active cells, the most active "
           "nearest the sense amps (bottom); Manhattan Distance Mapping",
    "reverse_mdm": "the opposite sort: the most active rows farthest from the sense amps",
}
"""Row orders of a tile, by name."""

PRESETS: dict[str, dict[str, str]] = {
    "naive": {"column_order": "interleaved", "row_order": "natural"},
    "planes_high_first": {"column_order": "planes_high_first", "row_order": "natural"},
    "mdm": {"column_order": "planes_low_first", "row_order": "mdm"},
    "reverse": {"column_order": "planes_high_first", "row_order": "reverse_mdm"},
    "mdm_rows_only": {"column_order": "interleaved", "row_order": "mdm"},
    "mdm_orientation_only": {"column_order": "planes_low_first", "row_order": "natural"},
    "mdm_rows_high_first": {"column_order": "planes_high_first", "row_order": "mdm"},
    "bit_weight_mdm_rows": {"column_order": "bit_weight", "row_order": "mdm"},
}
"""Named layouts. ``naive`` interleaves each weight's slices; ``planes_high_first`` (bit
planes, most significant nearest the drivers, natural rows) is the paper-like baseline;
``mdm`` is low-order planes first with MDM's row sort; ``mdm_rows_only`` and
``mdm_orientation_only`` are its two halves on the interleaved layout, and
``mdm_rows_high_first`` is MDM's row sort on the baseline orientation; ``reverse`` is the
opposite of MDM; ``bit_weight_mdm_rows`` sorts columns by bit weight (the column lever)."""


@dataclass(frozen=True)
class MappingConfig:
    """How a weight matrix is mapped onto crossbar tiles.

    Parameters
    ----------
    weight_bits : int
        Signed weight bit width B in [2, 16].
    bits_per_cell : int
        Bits stored per device, 1 to 4.
    sign : {"differential", "offset"}
        Differential pair of arrays (B-1 magnitude bits each) or offset binary (B bits).
    granularity : {"tensor", "channel"}
        Weight scale per tensor or per output channel.
    g_on, g_off : float
        Highest and lowest device conductance in siemens; the default levels are
        ``g_off + k (g_on - g_off) / (2**bits_per_cell - 1)``.
    levels : sequence of float, optional
        A user level set: ``2**bits_per_cell`` strictly increasing conductances (S).
        The digital readout assumes evenly spaced levels between the first and the
        last, so an uneven set adds a (measured) level error.
    tile_rows, tile_cols : int
        Array size (rows = inputs, columns = bit lines).
    input_bits : int
        Input magnitude bits (sign applied as a bipolar voltage or a second pass).
    input_mode : {"dac", "bit_serial"}
        All input bits at once as a DAC voltage, or one bit plane per pass at
        ``v_read`` with shift-and-add over passes.
    v_read : float
        Full-scale input voltage in volts.
    column_order : str
        A name from :data:`COLUMN_ORDERS`.
    row_order : str
        A name from :data:`ROW_ORDERS`.
    reference_column : bool
        Reserve the last physical column of every tile for a reference column of
        ``levels[0]`` cells, whose current is subtracted from every column to remove the
        g_off contribution (``Periphery(offset="reference")``). Default False: the
        g_off contribution is subtracted digitally from the known inputs.
    """

    weight_bits: int = 8
    bits_per_cell: int = 1
    sign: str = "differential"
    granularity: str = "tensor"
    g_on: float = 1e-4
    g_off: float = 1e-6
    levels: tuple[float, ...] | None = None
    tile_rows: int = 64
    tile_cols: int = 64
    input_bits: int = 8
    input_mode: str = "dac"
    v_read: float = 0.2
    column_order: str = "interleaved"
    row_order: str = "natural"
    reference_column: bool = False

    def __post_init__(self) -> None:
        _check_int("weight_bits", self.weight_bits, 2, 16)
        _check_int("bits_per_cell", self.bits_per_cell, 1, 4)
        _check_int("tile_rows", self.tile_rows, 1, 1 << 20)
        _check_int("tile_cols", self.tile_cols, 1, 1 << 20)
        _check_int("input_bits", self.input_bits, 1, 16)
        for name, allowed in (("sign", ("differential", "offset")),
                              ("granularity", ("tensor", "channel")),
                              ("input_mode", ("dac", "bit_serial")),
                              ("column_order", tuple(COLUMN_ORDERS)),
                              ("row_order", tuple(ROW_ORDERS))):
            if getattr(self, name) not in allowed:
                raise MappingError(f"{name} must be one of {', '.join(allowed)}; "
                                   f"got {getattr(self, name)!r}")
        if not (np.isfinite(self.v_read) and self.v_read > 0):
            raise MappingError(f"v_read must be a positive number of volts, got {self.v_read!r}")
        if self.levels is None:
            if not (np.isfinite(self.g_on) and np.isfinite(self.g_off)
                    and 0 <= self.g_off < self.g_on):
                raise MappingError(f"need 0 <= g_off < g_on (siemens), got g_off={self.g_off!r},"
                                   f" g_on={self.g_on!r}")
        else:
            lv = np.asarray(self.levels, dtype=np.float64)
            if lv.shape != (2**self.bits_per_cell,):
                raise MappingError(f"levels must hold 2**bits_per_cell = {2**self.bits_per_cell} "
                                   f"conductances, got {lv.size}")
            if not np.all(np.isfinite(lv)) or lv[0] < 0 or np.any(np.diff(lv) <= 0):
                raise MappingError(f"levels must be finite, >= 0 S and strictly increasing, "
                                   f"got {lv.tolist()}")
            object.__setattr__(self, "levels", tuple(float(v) for v in lv))
        if not isinstance(self.reference_column, (bool, np.bool_)):
            raise MappingError(f"reference_column must be True or False, got "
                               f"{self.reference_column!r}")
        if self.tile_cols - int(self.reference_column) < self.n_slices:
            raise MappingError(f"tile_cols={self.tile_cols} cannot hold the {self.n_slices} "
                               "slices of one output channel"
                               + (" and a reference column" if self.reference_column else ""))

    # ---------------------------------------------------------------- derived
    @property
    def stored_bits(self) -> int:
        """Bits of the unsigned integers stored per array (B-1 differential, B offset)."""
        return self.weight_bits - 1 if self.sign == "differential" else self.weight_bits

    @property
    def n_slices(self) -> int:
        """Number of bit slices (columns) per output channel and array."""
        return -(-self.stored_bits // self.bits_per_cell)

    @property
    def outputs_per_tile(self) -> int:
        """Output channels held by one tile: ``(tile_cols - reference_column) // n_slices``."""
        return (self.tile_cols - int(self.reference_column)) // self.n_slices

    @property
    def offset(self) -> int:
        """Integer offset of the offset encoding (0 for differential)."""
        return 2 ** (self.weight_bits - 1) if self.sign == "offset" else 0

    @property
    def level_array(self) -> np.ndarray:
        """The ``2**bits_per_cell`` conductance levels in siemens."""
        if self.levels is not None:
            return np.asarray(self.levels, dtype=np.float64)
        n = 2**self.bits_per_cell - 1
        return self.g_off + np.arange(n + 1) * (self.g_on - self.g_off) / n

    @property
    def g_step(self) -> float:
        """Conductance per digit step assumed by the digital readout, in siemens."""
        lv = self.level_array
        return float((lv[-1] - lv[0]) / (lv.size - 1))

    def replace(self, **changes: Any) -> MappingConfig:
        """Return a validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> MappingConfig:
        """A config with the layout of a named preset (see :data:`PRESETS`)."""
        try:
            layout = PRESETS[name]
        except KeyError:
            raise MappingError(f"unknown mapping {name!r}; known: {', '.join(PRESETS)}") from None
        return cls(**{**layout, **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        d = dataclasses.asdict(self)
        d["levels"] = None if self.levels is None else list(self.levels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MappingConfig:
        """Build from :meth:`to_dict` output; a ``"preset"`` key selects a named layout."""
        data = dict(data)
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)} - {"preset"}
        if unknown:
            raise MappingError(f"unknown mapping config key(s): {', '.join(sorted(unknown))}")
        preset = data.pop("preset", None)
        if data.get("levels") is not None:
            data["levels"] = tuple(data["levels"])
        return cls.preset(preset, **data) if preset else cls(**data)


@dataclass(frozen=True, eq=False)
class Tile:
    """One physical crossbar of a mapped layer.

    Attributes
    ----------
    key : tuple of int
        ``(array, row_block, col_block)``; ``array`` 0 is W⁺ (or the offset array),
        1 is W⁻.
    polarity : int
        +1 or -1: sign of this array in the recombination.
    rows : ndarray of int, shape (R,)
        Layer input index driving each physical row, -1 for a padded row. Row 0 is
        the top (farthest from the sense amps).
    col_output, col_slice : ndarray of int, shape (C,)
        Output channel and bit slice of each physical column (-1 for padding; a
        reference column has output -1 and slice -2). Column 0 is nearest the drivers.
    digits : ndarray of int, shape (R, C)
        Slice digit stored in each cell (0 for padding).
    conductance : ndarray, shape (R, C)
        Conductances of the mapping (the target the circuit should compute with), in
        siemens; programmed as they are unless ``programmed`` is set.
    programmed : ndarray, shape (R, C), or None
        Conductances actually written, siemens, when they differ from ``conductance``
        (compensation by programming, :func:`~xbar_circuit.mapping.compensate_layer`);
        the circuit is built from them, the ideal output from ``conductance``.
    """

    key: tuple[int, int, int]
    polarity: int
    rows: np.ndarray
    col_output: np.ndarray
    col_slice: np.ndarray
    digits: np.ndarray
    conductance: np.ndarray
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    programmed: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """(R, C) of the physical array."""
        return self.digits.shape  # type: ignore[return-value]

    @property
    def real_columns(self) -> np.ndarray:
        """Boolean mask of columns that hold weights (not padding); (C,)."""
        return self.col_output >= 0

    @property
    def reference_columns(self) -> np.ndarray:
        """Boolean mask of the reference column (all ``levels[0]`` cells), if any; (C,)."""
        return self.col_slice == -2

    def with_column_order(self, order: ArrayLike) -> Tile:
        """Return the tile with its physical columns rearranged.

        The recombination reads each column's output channel and slice from the tile,
        so any column permutation leaves the ideal result unchanged.

        Parameters
        ----------
        order : array_like of int, shape (C,)
            ``order[p]`` is the current physical column moved to position ``p``.
        """
        order = np.asarray(order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(self.shape[1])):
            raise MappingError(f"column order must be a permutation of 0..{self.shape[1] - 1}")
        return dataclasses.replace(self, col_output=self.col_output[order],
                                   col_slice=self.col_slice[order],
                                   digits=self.digits[:, order],
                                   conductance=self.conductance[:, order], cache={},
                                   programmed=None if self.programmed is None
                                   else self.programmed[:, order])

    def with_row_order(self, order: ArrayLike) -> Tile:
        """Return the tile with its physical rows rearranged.

        Parameters
        ----------
        order : array_like of int, shape (R,)
            ``order[p]`` is the current physical row moved to position ``p``.
        """
        order = np.asarray(order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(self.shape[0])):
            raise MappingError(f"row order must be a permutation of 0..{self.shape[0] - 1}")
        return dataclasses.replace(self, rows=self.rows[order], digits=self.digits[order],
                                   conductance=self.conductance[order], cache={},
                                   programmed=None if self.programmed is None
                                   else self.programmed[order])


def row_scores(digits: np.ndarray, rows: np.ndarray,
               input_activity: np.ndarray | None = None) -> np.ndarray:
    """MDM score of each physical row: activity-weighted sum of its cells' digits.

    Padded rows score -1 so that they always go to the top.
    """
    score = digits.sum(axis=1).astype(np.float64)
    if input_activity is not None:
        score = score * np.where(rows >= 0, input_activity[np.maximum(rows, 0)], 0.0)
    return np.where(rows >= 0, score, -1.0)


def _row_permutation(order: str, digits: np.ndarray, rows: np.ndarray,
                     activity: np.ndarray | None) -> np.ndarray:
    if order == "natural":
        return np.arange(rows.size)
    score = row_scores(digits, rows, activity)
    # Stable sorts: ties keep the natural input order (deterministic layouts).
    if order == "mdm":
        return np.argsort(score, kind="stable")  # most active last = bottom
    keys = np.where(rows >= 0, -score, np.inf)  # reverse: most active on top, padding last
    return np.argsort(keys, kind="stable")


def _column_layout(order: str, outputs: np.ndarray, n_slices: int, n_cols: int,
                   reference: bool = False) -> tuple[np.ndarray, np.ndarray]:
    if order in ("interleaved", "bit_weight"):  # bit_weight is sorted once digits exist
        out = np.repeat(outputs, n_slices)
        sl = np.tile(np.arange(n_slices)[::-1], outputs.size)
    else:
        planes = np.arange(n_slices) if order == "planes_low_first" else np.arange(n_slices)[::-1]
        out = np.tile(outputs, n_slices)
        sl = np.repeat(planes, outputs.size)
    pad = n_cols - out.size - int(reference)
    ref = np.array([-1] if reference else [], np.int64)
    return (np.concatenate([out, -np.ones(pad, np.int64), ref]),
            np.concatenate([sl, -np.ones(pad, np.int64), 2 * ref]))


def _bit_weight_order(digits: np.ndarray, col_output: np.ndarray, col_slice: np.ndarray,
                      bits_per_cell: int) -> np.ndarray:
    """Column permutation putting the largest ``2**(b*slice) * digit sum`` nearest the drivers.

    Padding and the reference column keep their places at the far end.
    """
    real = np.flatnonzero(col_output >= 0)
    weight = digits[:, real].sum(axis=0) * 2.0 ** (bits_per_cell * col_slice[real])
    # Stable sort with the slice as tie-break: high slices first among equal weights.
    keys = np.lexsort((-col_slice[real], -weight))
    return np.concatenate([real[keys], np.flatnonzero(col_output < 0)])


@dataclass(frozen=True, eq=False)
class MappedLayer:
    """A layer's weights mapped onto crossbar tiles (see :func:`map_layer`).

    Attributes
    ----------
    config : MappingConfig
    weights : QuantizedWeights
        The signed integers and scales.
    tiles : tuple of Tile
    bias : ndarray, shape (O,) or None
        Added digitally after recombination.
    input_activity : ndarray, shape (K,) or None
        Row weights used by MDM's sort.
    """

    config: MappingConfig
    weights: QuantizedWeights
    tiles: tuple[Tile, ...]
    bias: np.ndarray | None = None
    input_activity: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(K, O) of the layer matrix."""
        return self.weights.q.shape  # type: ignore[return-value]

    def with_tile(self, index: int, tile: Tile) -> MappedLayer:
        """Return a copy whose tile ``index`` is replaced (e.g. by a searched one)."""
        old = self.tiles[index]
        if tile.key != old.key or tile.shape != old.shape:
            raise MappingError("the replacement tile must have the same key and shape")
        tiles = list(self.tiles)
        tiles[index] = tile
        return dataclasses.replace(self, tiles=tuple(tiles))

    def summary(self) -> dict[str, Any]:
        """Counts that describe the mapping (tiles, slices, density of active cells)."""
        digits = [t.digits[t.rows >= 0][:, t.real_columns] for t in self.tiles]
        active = sum(int((d > 0).sum()) for d in digits)
        cells = sum(d.size for d in digits)
        return {"shape": list(self.shape), "n_tiles": len(self.tiles),
                "n_slices": self.config.n_slices, "tile_shape": [self.config.tile_rows,
                                                                 self.config.tile_cols],
                "active_cell_fraction": active / max(cells, 1)}


def _stored_arrays(qw: QuantizedWeights, config: MappingConfig) -> list[tuple[int, np.ndarray]]:
    if config.sign == "differential":
        return [(1, np.maximum(qw.q, 0)), (-1, np.maximum(-qw.q, 0))]
    return [(1, qw.q + config.offset)]


def map_layer(weights: ArrayLike | QuantizedWeights, config: MappingConfig | None = None, *,
              bias: ArrayLike | None = None, input_activity: ArrayLike | None = None,
              **changes: Any) -> MappedLayer:
    """Quantize, bit-slice and tile a weight matrix onto crossbars.

    Parameters
    ----------
    weights : array_like, shape (K, O), or QuantizedWeights
        Layer matrix with ``y = x @ weights`` (a PyTorch Linear weight transposed),
        or already quantized weights (their ``bits`` must equal ``weight_bits``).
    config : MappingConfig, optional
        Mapping options; keyword ``changes`` override its fields (or the defaults).
    bias : array_like, shape (O,), optional
        Added after recombination (digital).
    input_activity : array_like, shape (K,), optional
        Non-negative weight per input (e.g. mean ``|x|`` on calibration data) that MDM's
        row sort multiplies each row's active-cell count by.

    Returns
    -------
    MappedLayer

    Examples
    --------
    >>> import numpy as np
    >>> w = np.random.default_rng(0).normal(size=(10, 3))
    >>> layer = map_layer(w, MappingConfig.preset("mdm", tile_rows=8, tile_cols=8))
    >>> layer.config.n_slices, len(layer.tiles)   # 7 slices, 2 row blocks x 3 x 2 arrays
    (7, 12)
    """
    config = MappingConfig() if config is None else config
    if changes:
        config = config.replace(**changes)
    if isinstance(weights, QuantizedWeights):
        if weights.bits != config.weight_bits:
            raise MappingError(f"quantized weights have {weights.bits} bits, config asks "
                               f"{config.weight_bits}")
        qw = weights
    else:
        qw = quantize_weights(as_matrix(weights), config.weight_bits, config.granularity)
    k, o = qw.q.shape
    activity = None
    if input_activity is not None:
        activity = np.asarray(input_activity, dtype=np.float64)
        if activity.shape != (k,) or not np.all(np.isfinite(activity)) or np.any(activity < 0):
            raise MappingError(f"input_activity must be {k} finite values >= 0")
    bias_arr = None
    if bias is not None:
        bias_arr = np.asarray(bias, dtype=np.float64)
        if bias_arr.shape != (o,) or not np.all(np.isfinite(bias_arr)):
            raise MappingError(f"bias must be {o} finite values")
    rt, ct, ns, b = config.tile_rows, config.tile_cols, config.n_slices, config.bits_per_cell
    per_tile = config.outputs_per_tile
    levels = config.level_array
    mask = 2**b - 1
    tiles: list[Tile] = []
    for a_index, (polarity, stored) in enumerate(_stored_arrays(qw, config)):
        for rb in range(-(-k // rt)):
            inputs = np.arange(rb * rt, min(k, (rb + 1) * rt))
            rows = np.concatenate([inputs, -np.ones(rt - inputs.size, np.int64)])
            for cb in range(-(-o // per_tile)):
                outputs = np.arange(cb * per_tile, min(o, (cb + 1) * per_tile))
                col_out, col_sl = _column_layout(config.column_order, outputs, ns, ct,
                                                 config.reference_column)
                digits = np.zeros((rt, ct), dtype=np.int64)
                real_c = col_out >= 0
                block = stored[np.ix_(inputs, col_out[real_c])]
                digits[: inputs.size, real_c] = (block >> (b * col_sl[real_c])[None, :]) & mask
                if config.column_order == "bit_weight":
                    cperm = _bit_weight_order(digits, col_out, col_sl, b)
                    col_out, col_sl, digits = col_out[cperm], col_sl[cperm], digits[:, cperm]
                perm = _row_permutation(config.row_order, digits, rows, activity)
                rows_p, digits_p = rows[perm], digits[perm]
                tiles.append(Tile(key=(a_index, rb, cb), polarity=polarity, rows=rows_p,
                                  col_output=col_out, col_slice=col_sl, digits=digits_p,
                                  conductance=levels[digits_p]))
    return MappedLayer(config=config, weights=qw, tiles=tuple(tiles), bias=bias_arr,
                       input_activity=activity)


def layer_from_tiles(layer: MappedLayer, tiles: Sequence[Tile]) -> MappedLayer:
    """Return ``layer`` with all its tiles replaced (same keys, same order)."""
    if [t.key for t in tiles] != [t.key for t in layer.tiles]:
        raise MappingError("tiles must have the same keys in the same order")
    return dataclasses.replace(layer, tiles=tuple(tiles))
