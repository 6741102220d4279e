"""Circuit evaluation of a mapped layer: effective conductances, readout, outputs, metrics.

A linear crossbar computes ``I = V · G_eff`` exactly, so each tile is solved once for its
(M, N) effective conductance matrix (:func:`xbar_circuit.effective_conductance`) and
every batch of inputs is then one matrix product. Tiles with nonlinear cells are solved
for every batch instead (:func:`xbar_circuit.solve`).

The circuit of every tile is described by a :class:`MappingCircuit`: a
:class:`~xbar_circuit.Crossbar` template (wires, drivers, sense, device model and
periphery variants) whose conductances are replaced by the tile's, plus optional
programming variability and stuck-at faults. :class:`CircuitParams` (four resistances)
is a shorthand for the default linear circuit.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_int
from ..api import solve
from ..effective import effective_conductance
from ..errors import XbarError
from ..spec import Crossbar
from .layout import MappedLayer, Tile
from .quantize import MappingError, QuantizedInputs, quantize_inputs
from .readout import Periphery, TileCalibration, adc_quantize, fit_column_gain

__all__ = [
    "CircuitParams",
    "MappingCircuit",
    "Calibration",
    "as_circuit",
    "effective_conductance",
    "effective_weights",
    "calibrate_layer",
    "tile_crossbar",
    "tile_effective_conductance",
    "tile_currents",
    "layer_output",
    "integer_output",
    "tile_nf",
    "layer_nf",
    "layer_metrics",
    "NFReport",
    "load_lut",
    "lut_tile_nf",
    "LUTRangeWarning",
    "METRICS",
    "output_error",
]


@dataclass(frozen=True)
class CircuitParams:
    """Parasitic resistances shared by every tile, in ohms (shorthand for the default circuit).

    Parameters
    ----------
    r_row, r_col : float
        Wire resistance of one row / column segment (one per cell), in ohms.
    r_driver, r_sense : float
        Driver output resistance and sense resistance to virtual ground, in ohms.
    backend : str
        Solver backend used for nonlinear tiles and the search objective.
    """

    r_row: float = 1.0
    r_col: float = 1.0
    r_driver: float = 0.0
    r_sense: float = 0.0
    backend: str = "nodal"

    def __post_init__(self) -> None:
        for name in ("r_row", "r_col", "r_driver", "r_sense"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and value >= 0):
                raise MappingError(f"{name} must be a finite number of ohms >= 0, got {value!r}")

    @property
    def is_ideal(self) -> bool:
        """True when every resistance is zero."""
        return self.r_row == self.r_col == self.r_driver == self.r_sense == 0.0

    def crossbar(self, conductance: ArrayLike) -> Crossbar:
        """The :class:`Crossbar` of a conductance matrix under these parasitics."""
        # Crossbar validates any array-like (and refuses booleans or text by name).
        return Crossbar(conductance, r_row=self.r_row,  # type: ignore[arg-type]
                        r_col=self.r_col, r_driver=self.r_driver, r_sense=self.r_sense)

    def circuit(self) -> MappingCircuit:
        """The equivalent :class:`MappingCircuit` (default linear circuit)."""
        return MappingCircuit(self.crossbar(np.zeros((1, 1))), backend=self.backend)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


IDEAL = CircuitParams(0.0, 0.0, 0.0, 0.0)


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:
        raise MappingError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class MappingCircuit:
    """The circuit of every tile: a Crossbar template plus variability and faults.

    Parameters
    ----------
    template : Crossbar
        Wires, drivers, sense, device model, TIA/sense load and driver/sense sides of
        every tile; its conductances are ignored (each tile brings its own). Per-segment
        wire arrays must have the tile's shape.
    sigma : float
        Lognormal programming variability ``G' = G exp(σ z)`` (dimensionless, >= 0;
        default 0, none).
    p_stuck_on, p_stuck_off : float
        Probabilities that a cell is stuck at the highest / lowest level (default 0).
    seed : int
        Seed of the variability and faults; each tile draws from ``(seed, *tile.key)``.
    backend : str
        Backend of the solves of nonlinear tiles and of the search objective.

    Notes
    -----
    Metrics compare against the intended (programmed) conductances, so variability and
    faults count as mapping error. Linear cells go through the exact ``G_eff``;
    nonlinear cells (``template.device``) are solved for every batch.
    """

    template: Crossbar
    sigma: float = 0.0
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0
    seed: int = 0
    backend: str = "nodal"
    _key: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not isinstance(self.template, Crossbar):
            raise MappingError(f"template must be an xbar_circuit.Crossbar, got "
                               f"{type(self.template).__name__}")
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)) \
                or not math.isfinite(self.sigma) or self.sigma < 0:
            raise MappingError(f"sigma must be a finite number >= 0, got {self.sigma!r}")
        _probability("p_stuck_on", self.p_stuck_on)
        _probability("p_stuck_off", self.p_stuck_off)
        if self.p_stuck_on + self.p_stuck_off > 1:
            raise MappingError("p_stuck_on + p_stuck_off must not exceed 1")
        check_int("seed", self.seed, 0, error=MappingError)
        t = self.template
        key = ("circuit", self._fingerprint(t.r_row), self._fingerprint(t.r_col),
               float(t.r_driver), float(t.r_sense), repr(t.device), t.driver_side,
               t.sense_side, repr(t.tia), t.sense_load, float(self.sigma),
               float(self.p_stuck_on), float(self.p_stuck_off), int(self.seed), self.backend)
        object.__setattr__(self, "_key", key)

    @staticmethod
    def _fingerprint(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return (value.shape, hash(np.ascontiguousarray(value).tobytes()))
        return float(value)

    @property
    def cache_key(self) -> tuple:
        """Hashable identity of the circuit (for the G_eff cache on tiles)."""
        return self._key

    @property
    def is_linear(self) -> bool:
        """True when the cells are linear (the exact G_eff exists)."""
        return self.template.is_linear

    @property
    def is_ideal(self) -> bool:
        """True for zero resistances, linear cells, default topology, no variability."""
        return (self.template.is_ideal and self.template.is_default_topology
                and self.template.is_linear and self.sigma == 0
                and self.p_stuck_on == 0 and self.p_stuck_off == 0)

    def crossbar(self, conductance: ArrayLike, key: tuple[int, ...] = (),
                 g_on: float | None = None, g_off: float | None = None) -> Crossbar:
        """The Crossbar of a tile's conductances under this circuit.

        Parameters
        ----------
        conductance : array_like, shape (R, C)
            Programmed conductances in siemens.
        key : tuple of int
            Tile key; seeds the tile's variability and faults.
        g_on, g_off : float, optional
            Stuck-at levels in siemens (default: the tile's largest / smallest value).
        """
        try:
            xbar = self.template.replace(conductance=np.asarray(conductance, dtype=np.float64))
        except XbarError as exc:
            raise MappingError(f"the circuit template does not fit a tile of shape "
                               f"{np.shape(conductance)}: {exc}") from None
        if self.sigma == 0 and self.p_stuck_on == 0 and self.p_stuck_off == 0:
            return xbar
        from ..variability import lognormal_variability, stuck_at_faults

        rng = np.random.default_rng([int(self.seed), *(int(k) for k in key)])
        if self.sigma > 0:
            xbar = lognormal_variability(xbar, self.sigma, seed=rng)
        if self.p_stuck_on > 0 or self.p_stuck_off > 0:
            faulty = stuck_at_faults(xbar, self.p_stuck_on, self.p_stuck_off, g_on=g_on,
                                     g_off=g_off, seed=rng)
            assert isinstance(faulty, Crossbar)      # no mask asked for
            xbar = faulty
        return xbar

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the template without its conductances)."""
        t = self.template
        return {"r_row": t.r_row if np.isscalar(t.r_row) else "per-segment",
                "r_col": t.r_col if np.isscalar(t.r_col) else "per-segment",
                "r_driver": t.r_driver, "r_sense": t.r_sense, "device": repr(t.device),
                "driver_side": t.driver_side, "sense_side": t.sense_side,
                "tia": repr(t.tia), "sense_load": t.sense_load, "sigma": self.sigma,
                "p_stuck_on": self.p_stuck_on, "p_stuck_off": self.p_stuck_off,
                "seed": self.seed, "backend": self.backend}


def as_circuit(circuit: Any) -> MappingCircuit | None:
    """Normalize a circuit argument: None, CircuitParams, Crossbar template or MappingCircuit.

    Raises
    ------
    MappingError
        For anything else.
    """
    if circuit is None or isinstance(circuit, MappingCircuit):
        return circuit
    if isinstance(circuit, CircuitParams):
        return circuit.circuit()
    if isinstance(circuit, Crossbar):
        return MappingCircuit(circuit)
    raise MappingError(f"circuit must be a CircuitParams, MappingCircuit or Crossbar template, "
                       f"got {type(circuit).__name__}")


def tile_crossbar(tile: Tile, circuit: Any, layer: MappedLayer | None = None) -> Crossbar:
    """The :class:`Crossbar` of one tile under ``circuit`` (variability drawn per tile key).

    ``layer`` supplies the stuck-at levels (its first and last conductance level). The
    cells carry ``tile.programmed`` when the tile was compensated, else
    ``tile.conductance``.
    """
    circ = as_circuit(circuit)
    g = tile.conductance if tile.programmed is None else tile.programmed
    if circ is None:
        return Crossbar(g, r_row=0.0, r_col=0.0)
    g_on = g_off = None
    if layer is not None:
        lv = layer.config.level_array
        g_on, g_off = float(lv[-1]), float(lv[0])
    return circ.crossbar(g, tile.key, g_on, g_off)


def tile_effective_conductance(tile: Tile, circuit: Any, layer: MappedLayer | None = None
                               ) -> np.ndarray:
    """G_eff of a tile (cached on the tile per circuit), in siemens; (R, C).

    Raises
    ------
    MappingError
        For a circuit with nonlinear cells (use :func:`tile_currents`).
    """
    circ = as_circuit(circuit)
    if circ is None:
        return np.array(tile.conductance)
    if not circ.is_linear:
        raise MappingError("a tile with nonlinear cells has no effective conductance; its "
                           "currents are solved for every input (method='solve')")
    key = ("geff", circ.cache_key)
    if key not in tile.cache:
        xbar = tile_crossbar(tile, circ, layer)
        tile.cache[key] = (np.array(xbar.conductance) if circ.is_ideal else
                           effective_conductance(xbar, backend=circ.backend))
    return tile.cache[key]


def _tile_response(tile: Tile, circuit: MappingCircuit | None, method: str,
                   layer: MappedLayer | None = None):
    """Return ``f(V (B, R_real)) -> I (B, C)``: voltages of the real rows only.

    Padded rows sit at 0 V, so they are left out of the product (they matter only to
    a solve, which gets the full voltage vector).
    """
    rows = np.flatnonzero(tile.rows >= 0)
    if circuit is None:
        g = tile.conductance[rows]
        return lambda v: v @ g
    if method == "auto":
        method = "geff" if circuit.is_linear else "solve"
    if method == "geff":
        sub = tile_effective_conductance(tile, circuit, layer)[rows]
        return lambda v: v @ sub
    if method == "solve":
        xbar = tile_crossbar(tile, circuit, layer)
        n = tile.shape[0]

        def run(v: np.ndarray) -> np.ndarray:
            full = np.zeros((v.shape[0], n))
            full[:, rows] = v
            return np.atleast_2d(solve(xbar, full, backend=circuit.backend).column_currents)

        return run
    raise MappingError(f"method must be 'auto', 'geff' or 'solve', got {method!r}")


def tile_currents(tile: Tile, circuit: Any, v: ArrayLike, layer: MappedLayer | None = None,
                  method: str = "auto") -> np.ndarray:
    """Column currents (B, C) in amperes of a tile driven by row voltages ``v`` (B, R), volts."""
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    return _tile_response(tile, as_circuit(circuit), method, layer)(v[:, tile.rows >= 0])


def _recombination(layer: MappedLayer, tile: Tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real column indices, output indices, (C_real, O_tile) shift-and-add matrix)."""
    key = ("recombination", layer.config.bits_per_cell)
    if key not in tile.cache:
        real = np.flatnonzero(tile.real_columns)
        outs, inverse = np.unique(tile.col_output[real], return_inverse=True)
        r = np.zeros((real.size, outs.size))
        r[np.arange(real.size), inverse] = tile.polarity * 2.0 ** (
            layer.config.bits_per_cell * tile.col_slice[real])
        tile.cache[key] = (real, outs, r)
    return tile.cache[key]


# --------------------------------------------------------------------- readout
@dataclass
class Calibration:
    """Readout constants of every tile of a layer (from :func:`calibrate_layer`).

    Attributes
    ----------
    periphery : Periphery
    tiles : list of TileCalibration
        One per tile, in ``layer.tiles`` order.
    circuit_key : tuple
        Identity of the circuit the constants were fitted on.
    n_vectors : int
        Calibration input vectors used.
    """

    periphery: Periphery
    tiles: list[TileCalibration]
    circuit_key: tuple
    n_vectors: int


def _passes(cfg: Any, xt: np.ndarray):
    """Yield ``(factor, v, v_unit)``: row voltages of each read pass and its digit weight."""
    if cfg.input_mode == "dac":
        v_unit = cfg.v_read / (2**cfg.input_bits - 1)
        yield 1.0, xt * v_unit, v_unit
        return
    for sign, part in ((1, np.maximum(xt, 0)), (-1, np.maximum(-xt, 0))):
        if not part.any():
            continue
        for bit in range(cfg.input_bits):
            plane = (part >> bit) & 1
            if plane.any():
                yield sign * 2.0**bit, plane * cfg.v_read, cfg.v_read


def _full_scale(layer: MappedLayer, tile: Tile, periphery: Periphery) -> np.ndarray:
    cfg = layer.config
    g = tile.conductance[tile.rows >= 0]
    if periphery.offset == "reference":
        g = g - cfg.level_array[0]
    return cfg.v_read * g.sum(axis=0)


def _route(layer: MappedLayer, tile: Tile, x_int: np.ndarray) -> np.ndarray:
    """Integer inputs of every physical row of a tile (0 on padded rows), (B, R)."""
    real = tile.rows >= 0
    xt = np.zeros((x_int.shape[0], tile.rows.size), dtype=np.int64)
    xt[:, real] = x_int[:, tile.rows[real]]
    return xt


def _route_real(tile: Tile, x_int: np.ndarray) -> np.ndarray:
    """Integer inputs of the real rows of a tile, in physical order, (B, R_real)."""
    return x_int[:, tile.rows[tile.rows >= 0]]


def _digit_sums(layer: MappedLayer, tile: Tile, x_int: np.ndarray, response,
                periphery: Periphery | None = None, tcal: TileCalibration | None = None,
                collect: list | None = None) -> np.ndarray:
    """Per-column digit-sum estimates Σ_i x_i d_ij of one tile, (B, C), from its currents.

    ``collect`` (a list) receives the pre-ADC signal of each pass instead of digitizing.
    """
    cfg = layer.config
    periphery = periphery or Periphery()
    g0, dg = cfg.level_array[0], cfg.g_step
    xt = _route_real(tile, x_int)
    # Only columns that hold weights (and the reference) are read; padding stays 0.
    cols = np.flatnonzero(tile.real_columns | tile.reference_columns)
    ref = np.flatnonzero(tile.reference_columns[cols])[:1]
    total = np.zeros((xt.shape[0], tile.shape[1]))
    part = np.zeros((xt.shape[0], cols.size))
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    if periphery.adc_bits is not None and collect is None:
        if periphery.adc_range == "full_scale":
            hi = _full_scale(layer, tile, periphery)[cols]
            lo = -hi
        else:
            lo = tcal.adc_lo[cols]  # type: ignore[union-attr,index]
            hi = tcal.adc_hi[cols]  # type: ignore[union-attr,index]
    for factor, v, unit in _passes(cfg, xt):
        current = response(v)[:, cols]
        signal = current - current[:, ref] if periphery.offset == "reference" else current
        if collect is not None:
            full = np.zeros((signal.shape[0], tile.shape[1]))
            full[:, cols] = signal
            collect.append(full)
        elif lo is not None:
            signal = adc_quantize(signal, lo, hi, periphery.adc_bits)  # type: ignore[arg-type]
        if periphery.offset == "digital":
            signal = signal - g0 * v.sum(axis=1, keepdims=True)
        part += signal * (factor / (dg * unit))
    if tcal is not None and periphery.calibration != "none" and collect is None:
        part = part * tcal.gain[cols] + tcal.offset[cols]
    total[:, cols] = part
    return total


def _int_inputs(layer: MappedLayer, x: ArrayLike | QuantizedInputs) -> np.ndarray:
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
    return x_int


def _check_periphery(layer: MappedLayer, circ: MappingCircuit | None,
                     periphery: Periphery | None, calibration: Calibration | None
                     ) -> Periphery:
    if calibration is not None:
        if not isinstance(calibration, Calibration):
            raise MappingError(f"calibration must come from calibrate_layer, got "
                               f"{type(calibration).__name__}")
        if periphery is not None and periphery != calibration.periphery:
            raise MappingError("periphery differs from the one the calibration was made for")
        if len(calibration.tiles) != len(layer.tiles):
            raise MappingError(f"the calibration has {len(calibration.tiles)} tiles, the layer "
                               f"{len(layer.tiles)}: calibrate this layer")
        key = circ.cache_key if circ is not None else ("ideal",)
        if calibration.circuit_key != key:
            raise MappingError("the calibration was fitted on a different circuit")
        return calibration.periphery
    periphery = Periphery() if periphery is None else periphery
    if not isinstance(periphery, Periphery):
        raise MappingError(f"periphery must be a Periphery, got {type(periphery).__name__}")
    if periphery.needs_calibration:
        raise MappingError(f"the periphery ({periphery.label()}) needs calibration constants: "
                           "pass calibration=calibrate_layer(layer, x_cal, circuit, periphery)")
    if periphery.offset == "reference" and not layer.config.reference_column:
        raise MappingError("offset='reference' needs a layer mapped with "
                           "MappingConfig(reference_column=True)")
    return periphery


def calibrate_layer(layer: MappedLayer, x: ArrayLike, circuit: Any, periphery: Periphery, *,
                    input_scale: float | str = "dynamic", method: str = "auto") -> Calibration:
    """Fit the ADC range and the per-column gain/offset of every tile on calibration inputs.

    Parameters
    ----------
    layer : MappedLayer
    x : array_like, shape (B, K)
        Calibration activations (real units), e.g. a few hundred training inputs.
    circuit : CircuitParams, MappingCircuit or Crossbar template, or None (ideal)
    periphery : Periphery
    input_scale, method
        As in :func:`layer_output`.

    Returns
    -------
    Calibration
        Pass it to :func:`layer_output` / :func:`integer_output` as ``calibration=``.
    """
    if not isinstance(periphery, Periphery):
        raise MappingError(f"periphery must be a Periphery, got {type(periphery).__name__}")
    if periphery.offset == "reference" and not layer.config.reference_column:
        raise MappingError("offset='reference' needs a layer mapped with "
                           "MappingConfig(reference_column=True)")
    circ = as_circuit(circuit)
    x_int = _int_inputs(layer, quantize_inputs(x, layer.config.input_bits, input_scale))
    tiles = []
    for tile in layer.tiles:
        response = _tile_response(tile, circ, method, layer)
        lo = hi = None
        if periphery.adc_bits is not None and periphery.adc_range == "calibrated":
            signals: list[np.ndarray] = []
            _digit_sums(layer, tile, x_int, response, periphery, None, collect=signals)
            stack = np.concatenate(signals, axis=0)
            lo, hi = stack.min(axis=0), stack.max(axis=0)
        tcal = TileCalibration(lo, hi, np.ones(tile.shape[1]), np.zeros(tile.shape[1]))
        if periphery.calibration != "none":
            read = _digit_sums(layer, tile, x_int, response,
                               dataclasses.replace(periphery, calibration="none"), tcal)
            ideal = (_route_real(tile, x_int) @ tile.digits[tile.rows >= 0]).astype(np.float64)
            tcal.gain, tcal.offset = fit_column_gain(read, ideal,
                                                     periphery.calibration == "gain_offset")
        tiles.append(tcal)
    key = circ.cache_key if circ is not None else ("ideal",)
    return Calibration(periphery, tiles, key, int(x_int.shape[0]))


def integer_output(layer: MappedLayer, x: ArrayLike | QuantizedInputs, circuit: Any = None,
                   method: str = "auto", *, periphery: Periphery | None = None,
                   calibration: Calibration | None = None) -> np.ndarray:
    """Recombined integer-domain output ``≈ x_int @ q`` of the mapped layer, (B, O).

    With ``circuit=None`` and the ideal readout the value equals the integer product
    exactly up to float rounding (round it to get the integers).

    Parameters
    ----------
    layer : MappedLayer
    x : array_like (B, K) of int, or QuantizedInputs
        Integer inputs ``|x| <= 2**input_bits - 1``.
    circuit : CircuitParams, MappingCircuit or Crossbar template, optional
        The tiles' circuit; None is the ideal circuit.
    method : {"auto", "geff", "solve"}
        Tile currents from the cached effective conductance or by solving each batch;
        ``"auto"`` solves only nonlinear tiles.
    periphery : Periphery, optional
        Readout (ADC, offset, calibration); default the ideal readout.
    calibration : Calibration, optional
        From :func:`calibrate_layer`; required by a calibrated ADC range or a
        gain/offset calibration.

    Returns
    -------
    ndarray, shape (B, O)
    """
    cfg = layer.config
    x_int = _int_inputs(layer, x)
    circ = as_circuit(circuit)
    per = _check_periphery(layer, circ, periphery, calibration)
    linear = circ is None or (circ.is_linear and method in ("auto", "geff"))
    if linear and cfg.input_mode == "dac" and per.adc_bits is None:
        # Without an ADC the readout is affine in the inputs: one (K, O) product.
        w_int, c = _linear_map(layer, circ, per, calibration)
        return x_int @ w_int + c
    batch, (_, o) = x_int.shape[0], layer.shape
    y = np.zeros((batch, o))
    for index, tile in enumerate(layer.tiles):
        tcal = calibration.tiles[index] if calibration is not None else None
        sums = _digit_sums(layer, tile, x_int, _tile_response(tile, circ, method, layer), per,
                           tcal)
        real, outs, r = _recombination(layer, tile)
        y[:, outs] += sums[:, real] @ r
    if cfg.offset:
        y -= cfg.offset * x_int.sum(axis=1, keepdims=True)
    return y


_LINEAR_MAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _linear_map(layer: MappedLayer, circ: MappingCircuit | None, per: Periphery,
                calibration: Calibration | None) -> tuple[np.ndarray, np.ndarray]:
    """``(W_int (K, O), c (O,))`` with ``integer_output = x_int @ W_int + c`` (DAC, no ADC).

    Cached per layer, circuit, offset mode and calibration.
    """
    cfg = layer.config
    key = (circ.cache_key if circ is not None else ("ideal",), per.offset, per.calibration,
           id(calibration))
    cache = _LINEAR_MAPS.setdefault(layer, {})
    if key in cache:
        return cache[key][1:]
    g0, dg = cfg.level_array[0], cfg.g_step
    k, o = layer.shape
    w = np.zeros((k, o))
    c = np.zeros(o)
    for index, tile in enumerate(layer.tiles):
        g = tile_effective_conductance(tile, circ, layer)
        m = g - g[:, tile.reference_columns][:, :1] if per.offset == "reference" else g - g0
        m = m / dg
        tcal = calibration.tiles[index] if calibration is not None else None
        if tcal is not None and per.calibration != "none":
            m = m * tcal.gain
        real, outs, r = _recombination(layer, tile)
        rr = np.flatnonzero(tile.rows >= 0)
        w[np.ix_(tile.rows[rr], outs)] += m[np.ix_(rr, real)] @ r
        if tcal is not None and per.calibration != "none":
            c[outs] += tcal.offset[real] @ r
    if cfg.offset:
        w -= cfg.offset
    # The calibration is kept in the entry so that its id cannot be reused while cached.
    cache[key] = (calibration, w, c)
    return w, c


def layer_output(layer: MappedLayer, x: ArrayLike, circuit: Any = None, *,
                 method: str = "auto", input_scale: float | str = "dynamic",
                 periphery: Periphery | None = None,
                 calibration: Calibration | None = None) -> np.ndarray:
    """The layer output ``y ≈ x @ W + b`` computed through the mapped circuits.

    Parameters
    ----------
    layer : MappedLayer
    x : array_like, shape (K,) or (B, K)
        Real inputs, quantized to ``config.input_bits`` with ``input_scale``.
    circuit : CircuitParams, MappingCircuit or Crossbar template, optional
        The tiles' circuit; None gives the ideal (quantized) output.
    method : {"auto", "geff", "solve"}
        Exact effective conductance of each tile (cached) or a solve per call.
    input_scale : float or "dynamic"
        See :func:`~xbar_circuit.mapping.quantize_inputs`.
    periphery, calibration
        Readout, see :func:`integer_output`.

    Returns
    -------
    ndarray, shape (B, O), or (O,) for a single input vector.
    """
    single = np.ndim(x) == 1
    qi = quantize_inputs(x, layer.config.input_bits, input_scale)
    y = (integer_output(layer, qi, circuit, method, periphery=periphery,
                        calibration=calibration)
         * qi.scale[:, None] * layer.weights.scale)
    if layer.bias is not None:
        y = y + layer.bias
    return y[0] if single else y


def effective_weights(layer: MappedLayer, circuit: Any = None, *,
                      calibration: Calibration | None = None,
                      periphery: Periphery | None = None) -> np.ndarray:
    """The (K, O) matrix the mapped circuit applies to DAC inputs: ``y = x_q @ W_eff + b``.

    Exact for linear cells, DAC inputs and a readout without ADC (digital or reference
    offset, optional per-column gain); ``x_q`` are the quantized inputs in real units.
    With every resistance zero it equals ``layer.weights.dequantized``.

    Raises
    ------
    MappingError
        For nonlinear cells, bit-serial inputs, an ADC or an offset calibration (not
        linear maps of the input).
    """
    cfg = layer.config
    circ = as_circuit(circuit)
    per = _check_periphery(layer, circ, periphery, calibration)
    if cfg.input_mode != "dac":
        raise MappingError("effective_weights needs input_mode='dac'")
    if per.adc_bits is not None or per.calibration == "gain_offset":
        raise MappingError("an ADC or an offset calibration is not a linear map of the input")
    if circ is not None and not circ.is_linear:
        raise MappingError("a layer with nonlinear cells has no effective weights (use "
                           "layer_output, which solves each tile)")
    w_int, _ = _linear_map(layer, circ, per, calibration)
    return w_int * layer.weights.scale[None, :]


# -------------------------------------------------------------------- metrics
METRICS: dict[str, str] = {
    "bw_error": "bit-weighted (shift-and-add) error: per output channel and array, "
                "sum over slices of 2**(b*slice) * (I_ideal - I) over the same sum of "
                "I_ideal; mean over channels, arrays and input vectors",
    "output_error": "relative error of the layer output: ||y - y_ideal|| / ||y_ideal|| over "
                    "the batch, y_ideal the quantized output of the ideal circuit (no bias)",
    "column_nf": "column NF (secondary): mean over real columns of (I_ideal - I)/I_ideal",
}
"""What each reported metric is (every report names the metric of its numbers)."""


class LUTRangeWarning(UserWarning):
    """Tiles of a layer lie outside a lookup table's grid (one summary per layer)."""


def _stimulus(layer: MappedLayer, tile: Tile, x_int: np.ndarray | None) -> np.ndarray:
    """Row voltages (B, R) of a tile: all real rows at v_read, or DAC voltages of |x_int|."""
    cfg = layer.config
    real = tile.rows >= 0
    if x_int is None:
        return np.where(real, cfg.v_read, 0.0)[None, :]
    v = np.zeros((x_int.shape[0], tile.rows.size))
    v[:, real] = np.abs(x_int[:, tile.rows[real]]) * (cfg.v_read / (2**cfg.input_bits - 1))
    return v


def _nf_from_currents(ideal: np.ndarray, actual: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    ideal, actual = ideal[:, real], actual[:, real]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-zero input vectors
        cols = np.where(ideal > 0, (ideal - actual) / np.where(ideal > 0, ideal, 1.0), np.nan)
        per_input = (np.nanmean(cols, axis=1) if np.any(ideal > 0)
                     else np.array([np.nan]))
        agg = (ideal - actual).sum(axis=1) / ideal.sum(axis=1)
        rel = np.linalg.norm(actual - ideal, axis=1) / np.linalg.norm(ideal, axis=1)
        return {"nf": float(np.nanmean(per_input)), "nf_aggregate": float(np.nanmean(agg)),
                "relative_error": float(np.nanmean(rel)),
                "column_nf": np.nanmean(cols, axis=0)}


def _bw_parts(layer: MappedLayer, tile: Tile, ideal: np.ndarray, actual: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Shift-and-add sums per output channel of one tile: (error, ideal), each (B, O)."""
    real, outs, r = _recombination(layer, tile)
    r = np.abs(r)  # per array: slice weights without the array's polarity
    o = layer.shape[1]
    err = np.zeros((ideal.shape[0], o))
    ref = np.zeros((ideal.shape[0], o))
    err[:, outs] = (ideal - actual)[:, real] @ r
    ref[:, outs] = ideal[:, real] @ r
    return err, ref


def _bw_ratio(err: np.ndarray, ref: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref > 0, err / np.where(ref > 0, ref, 1.0), np.nan)
    return float(np.nanmean(ratio)) if np.any(ref > 0) else float("nan")


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


def _check_x_int(layer: MappedLayer, x_int: Any) -> np.ndarray | None:
    if x_int is None:
        return None
    x_int = np.asarray(x_int)
    if x_int.ndim != 2 or x_int.shape[1] != layer.shape[0]:
        raise MappingError(f"integer inputs must have shape (B, {layer.shape[0]}) for this "
                           f"layer of K={layer.shape[0]} rows, got {x_int.shape}")
    return x_int


def tile_nf(layer: MappedLayer, tile: Tile | int, circuit: Any,
            x_int: np.ndarray | None = None) -> dict[str, Any]:
    """Exact nonideality metrics of one tile over its real columns.

    Parameters
    ----------
    layer : MappedLayer
    tile : Tile or int
        The tile or its index in ``layer.tiles``.
    circuit : CircuitParams, MappingCircuit or Crossbar template
    x_int : ndarray (B, K) of int, optional
        Integer layer inputs; their magnitudes drive the rows as DAC voltages. None
        drives every real row at ``v_read`` (all-on).

    Returns
    -------
    dict
        ``bw_error`` (bit-weighted error of the tile's output channels), ``nf`` (column
        NF: mean over real columns with I_ideal > 0, averaged over the batch),
        ``nf_aggregate``, ``relative_error`` (of the column currents) and
        ``column_nf`` (C_real,).
    """
    tile = _resolve_tile(layer, tile)
    x_int = _check_x_int(layer, x_int)
    v = _stimulus(layer, tile, x_int)
    ideal = v @ tile.conductance
    actual = tile_currents(tile, circuit, v, layer)
    out = _nf_from_currents(ideal, actual, tile.real_columns)
    out["bw_error"] = _bw_ratio(*_bw_parts(layer, tile, ideal, actual))
    return out


def load_lut(path: str | None) -> Any:
    """Load a ``xbar_circuit.tables.LookupTable`` or return None when unavailable.

    Returns None when ``path`` is None or the tables package cannot be imported.
    """
    if path is None:
        return None
    try:
        from ..tables import LookupTable
    except ImportError:
        return None
    return LookupTable.load(path)


def lut_tile_nf(lut: Any, layer: MappedLayer, tile: Tile, crossbar: Crossbar | None = None
                ) -> float:
    """Lookup-table estimate of a tile's all-on column NF, queried like the exact one.

    The table sees the tile's real stimulus (padded rows at 0 V, every real row at
    ``v_read``) and only the real (weight-holding) columns enter the mean; the table's
    interpolated exact/model ratio scales the closed-form NF of those columns.
    Out-of-range parameters are clipped silently (:func:`layer_nf` warns once per layer).

    Returns
    -------
    float
        Estimated column NF (dimensionless).
    """
    from ..tables.physics import model_loss, nf_from_loss

    xbar = crossbar if crossbar is not None else Crossbar(
        tile.conductance, r_row=0.0, r_col=0.0)
    v = _stimulus(layer, tile, None)[0]
    scalar = lut.predict_nf(xbar, v, method="scalar", out_of_range="ignore")
    model = lut.predict_nf(xbar, v, method="model")
    kappa = scalar / model if (np.isfinite(model) and model > 0) else 1.0
    loss = model_loss(xbar.conductance, v, float(xbar.r_row), float(xbar.r_col),
                      xbar.r_driver, xbar.r_sense)
    real = tile.real_columns
    masked, _ = nf_from_loss(xbar.conductance[:, real], v, loss[:, real])
    return float(masked * kappa)


def _lut_range(lut: Any, crossbar: Crossbar) -> dict[str, float]:
    """Per table axis, how far outside the grid a crossbar lies (empty when inside)."""
    from ..tables.sweep import DIMS

    params = lut.crossbar_params(crossbar)
    out = {}
    for k in DIMS:
        axis = np.asarray(lut.dataset[k].values, dtype=np.float64)
        q = float(params[k])
        if q < axis[0] * (1 - 1e-12):
            out[k] = q - float(axis[0])
        elif q > axis[-1] * (1 + 1e-12):
            out[k] = q - float(axis[-1])
    return out


@dataclass
class NFReport:
    """Metrics of a mapped layer, per tile and for the layer (see :func:`layer_nf`).

    Output-referred metrics come first; the column NF is kept as a secondary metric.
    :data:`METRICS` says what each one is.

    Attributes
    ----------
    tiles : list of dict
        One row per tile: key, density, ``bw_error_allon``, ``nf_allon`` (exact, every
        real row at v_read), ``bw_error_inputs`` / ``nf_inputs`` (exact, under the given
        inputs, or None), ``nf_lut`` (lookup-table estimate or None) and
        ``lut_error = nf_lut - nf_allon``.
    layer_nf_allon, layer_nf_inputs : float
        Column NF over every real column of every tile (all-on / inputs).
    layer_nf_lut : float or None
    lut_available : bool
    bw_error_allon, bw_error_inputs : float
        Bit-weighted error of the layer (all-on / under the inputs), shift-and-add
        over the slices of each output channel and over the row blocks.
    output_error : float or None
        Relative error of the layer output under the inputs (with the given readout).
    lut_out_of_range : int
        Tiles outside the lookup table's grid (clipped).
    """

    tiles: list[dict[str, Any]]
    layer_nf_allon: float
    layer_nf_inputs: float | None
    layer_nf_lut: float | None
    lut_available: bool
    bw_error_allon: float = float("nan")
    bw_error_inputs: float | None = None
    output_error: float | None = None
    lut_out_of_range: int = 0

    @property
    def lut_mean_abs_error(self) -> float | None:
        """Mean ``|nf_lut - nf_allon|`` over tiles (None without a table)."""
        if not self.lut_available:
            return None
        return float(np.mean([abs(t["lut_error"]) for t in self.tiles]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the definition of every metric."""
        return {"metrics": dict(METRICS),
                "bw_error_allon": self.bw_error_allon, "bw_error_inputs": self.bw_error_inputs,
                "output_error": self.output_error,
                "layer_nf_allon": self.layer_nf_allon, "layer_nf_inputs": self.layer_nf_inputs,
                "layer_nf_lut": self.layer_nf_lut, "lut_available": self.lut_available,
                "lut_mean_abs_error": self.lut_mean_abs_error,
                "lut_out_of_range_tiles": self.lut_out_of_range, "tiles": self.tiles}


def output_error(layer: MappedLayer, x: ArrayLike, circuit: Any, *,
                 periphery: Periphery | None = None, calibration: Calibration | None = None,
                 input_scale: float | str = "dynamic", method: str = "auto") -> float:
    """Relative error of the layer output, ``||y - y_ideal|| / ||y_ideal||`` over the batch.

    ``y_ideal`` is the output of the ideal circuit with the same quantization; the bias
    is left out of both (dimensionless).
    """
    qi = quantize_inputs(x, layer.config.input_bits, input_scale)
    ideal = integer_output(layer, qi) * qi.scale[:, None] * layer.weights.scale
    actual = (integer_output(layer, qi, circuit, method, periphery=periphery,
                             calibration=calibration)
              * qi.scale[:, None] * layer.weights.scale)
    norm = np.linalg.norm(ideal)
    return float(np.linalg.norm(actual - ideal) / norm) if norm > 0 else float("nan")


def layer_nf(layer: MappedLayer, circuit: Any, x: ArrayLike | None = None, *,
             lut: Any = None, input_scale: float | str = "dynamic",
             periphery: Periphery | None = None,
             calibration: Calibration | None = None) -> NFReport:
    """Exact metrics of every tile and of the layer, with a lookup-table estimate beside them.

    Parameters
    ----------
    layer : MappedLayer
    circuit : CircuitParams, MappingCircuit or Crossbar template
    x : array_like (B, K), optional
        Real layer inputs; adds the metrics under these inputs (DAC voltages of ``|x|``)
        and the relative error of the layer output.
    lut : LookupTable, optional
        ``xbar_circuit.tables.LookupTable``; None reports the LUT column as unavailable.
        The table is queried with each tile's real stimulus and real columns
        (:func:`lut_tile_nf`); tiles outside its grid give one summary
        :class:`LUTRangeWarning` for the layer.
    input_scale : float or "dynamic"
        Input quantization scale for ``x``.
    periphery, calibration
        Readout of the output error (see :func:`integer_output`).

    Returns
    -------
    NFReport
    """
    circ = as_circuit(circuit)
    x_int = None if x is None else quantize_inputs(x, layer.config.input_bits, input_scale).q
    if x_int is not None and x_int.shape[1] != layer.shape[0]:
        raise MappingError(f"inputs have {x_int.shape[1]} features per vector but the layer "
                           f"has K={layer.shape[0]} rows; expected shape (B, {layer.shape[0]}) "
                           f"or ({layer.shape[0]},)")
    rows: list[dict[str, Any]] = []
    cols_allon: list[np.ndarray] = []
    cols_inputs: list[np.ndarray] = []
    n_arrays = 1 + max(t.key[0] for t in layer.tiles)
    o = layer.shape[1]
    bw_allon = np.zeros((2, n_arrays, 1, o))
    bw_inputs = None if x_int is None else np.zeros((2, n_arrays, x_int.shape[0], o))
    lut_ok = lut is not None and hasattr(lut, "predict_nf")
    outside: dict[str, list[float]] = {}
    n_outside = 0
    for index, tile in enumerate(layer.tiles):
        v = _stimulus(layer, tile, None)
        ideal, actual = v @ tile.conductance, tile_currents(tile, circ, v, layer)
        allon = _nf_from_currents(ideal, actual, tile.real_columns)
        err, ref = _bw_parts(layer, tile, ideal, actual)
        bw_allon[0, tile.key[0]] += err
        bw_allon[1, tile.key[0]] += ref
        cols_allon.append(allon["column_nf"])
        row: dict[str, Any] = {
            "index": index, "key": list(tile.key),
            "density": float((tile.digits[:, tile.real_columns] > 0).mean()),
            "bw_error_allon": _bw_ratio(err, ref), "nf_allon": allon["nf"],
            "bw_error_inputs": None, "nf_inputs": None, "nf_lut": None, "lut_error": None}
        if x_int is not None:
            v = _stimulus(layer, tile, x_int)
            ideal, actual = v @ tile.conductance, tile_currents(tile, circ, v, layer)
            inp = _nf_from_currents(ideal, actual, tile.real_columns)
            err, ref = _bw_parts(layer, tile, ideal, actual)
            bw_inputs[0, tile.key[0]] += err  # type: ignore[index]
            bw_inputs[1, tile.key[0]] += ref  # type: ignore[index]
            cols_inputs.append(inp["column_nf"])
            row["nf_inputs"] = inp["nf"]
            row["bw_error_inputs"] = _bw_ratio(err, ref)
        if lut_ok:
            try:
                xbar = tile_crossbar(tile, circ, layer)
                off = _lut_range(lut, xbar)
                if off:
                    n_outside += 1
                    for k, by in off.items():
                        outside.setdefault(k, []).append(by)
                row["nf_lut"] = lut_tile_nf(lut, layer, tile, xbar)
                row["lut_error"] = row["nf_lut"] - row["nf_allon"]
            except XbarError as exc:
                row["nf_lut"] = None
                row["lut_error"] = None
                row["lut_message"] = str(exc)
        rows.append(row)
    if outside:
        detail = "; ".join(f"{k} off by up to {max(v, key=abs):+.3g} ({len(v)} tiles)"
                           for k, v in outside.items())
        warnings.warn(f"{n_outside} of {len(layer.tiles)} tiles of this "
                      f"{layer.shape[0]}x{layer.shape[1]} layer lie outside the lookup "
                      f"table's grid and were clipped to its edge: {detail}",
                      LUTRangeWarning, stacklevel=2)
    lut_values = [r["nf_lut"] for r in rows if r["nf_lut"] is not None]
    lut_ok = lut_ok and len(lut_values) == len(rows)
    weights = [int(t.real_columns.sum()) for t in layer.tiles]
    out_err = None
    if x is not None:
        out_err = output_error(layer, x, circ, periphery=periphery, calibration=calibration,
                               input_scale=input_scale)
    return NFReport(
        tiles=rows,
        layer_nf_allon=float(np.nanmean(np.concatenate(cols_allon))),
        layer_nf_inputs=(float(np.nanmean(np.concatenate(cols_inputs))) if cols_inputs
                         else None),
        layer_nf_lut=(float(np.average(lut_values, weights=weights)) if lut_ok else None),
        lut_available=lut_ok,
        bw_error_allon=_bw_ratio(bw_allon[0], bw_allon[1]),
        bw_error_inputs=(None if bw_inputs is None else _bw_ratio(bw_inputs[0], bw_inputs[1])),
        output_error=out_err, lut_out_of_range=n_outside)


layer_metrics = layer_nf
"""Alias of :func:`layer_nf`: every output-referred and column metric of a layer."""
