"""The crossbar specification: one immutable, self-validating description of an array.

The circuit convention (docs/convention.md §1; the default circuit that every backend solves):

* Row ``i`` is driven at its **left** end by an ideal source ``V[i]`` in series with
  ``r_driver``; then ``N`` row segments of ``r_row``: driver node -> r(i,0) -> ... -> r(i,N-1).
* Column ``j`` runs from the top, c(0,j) -> ... -> c(M-1,j), through ``M`` segments of
  ``r_col`` to the sense node at the **bottom**, which reaches the virtual ground of an
  ideal transimpedance amplifier through ``r_sense``.
* Cell (i, j) is a conductance ``G[i, j]`` between r(i,j) and c(i,j).

Variants are keyword options whose defaults are exactly that circuit (docs/models.md):
``device`` (cell model, :mod:`xbar_circuit.devices`), ``driver_side``
(``"left"``/``"right"``/``"both"``), ``sense_side`` (``"bottom"``/``"top"``), ``tia``
(finite-gain op-amp, :class:`~xbar_circuit.periphery.TIA`), ``sense_load`` (a plain
resistor to ground instead of a TIA) and per-segment ``r_row``/``r_col`` arrays.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from ._memory import check_memory, crossbar_bytes
from ._validate import (
    MAX_CONDUCTANCE,
    MAX_RESISTANCE,
    as_real_array,
    check_finite_array,
    check_int,
    check_real,
    load_json,
    renamed_keywords,
    short_repr,
)
from .devices import Device, Linear, device_from_dict
from .errors import SpecError
from .periphery import DRIVER_SIDES, SENSE_SIDES, TIA

__all__ = ["Crossbar", "JSON_FORMAT", "JSON_VERSION", "JSON_VERSIONS"]

JSON_FORMAT = "xbar-circuit/crossbar"
JSON_VERSION = 2
"""Newest spec version written. Specs of the default circuit are written as version 1;
version 2 adds the variant fields."""
JSON_VERSIONS = (1, 2)
"""Spec versions this xbar-circuit reads."""

_V2_FIELDS = ("device", "driver_side", "sense_side", "tia", "sense_load")

_RESISTANCE_FIELDS = ("r_row", "r_col", "r_driver", "r_sense")


def _validate_resistance(name: str, value: Any) -> float:
    """Return ``value`` as a float in ohms, or raise :class:`SpecError` naming ``name``."""
    return check_real(name, value, 0.0, MAX_RESISTANCE, error=SpecError, unit="ohm")


def _validate_wire(name: str, value: Any, shape: tuple[int, int]) -> float | np.ndarray:
    """A scalar resistance (float) or a per-segment array of ``shape`` (read-only)."""
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0):
        array = as_real_array(name, value, error=SpecError, unit="ohm")
        if array.shape != shape:
            raise SpecError(f"{name} must be a real number of ohms or a per-segment array of "
                            f"shape {shape} (one resistance per segment), got shape "
                            f"{array.shape}")
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(array) | (array < 0.0) | (array > MAX_RESISTANCE)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise SpecError(f"{name} must be finite and >= 0 ohm (at most {MAX_RESISTANCE:g} "
                            f"ohm); {name}[{i}, {j}] = {float(array[i, j])!r}")
        array = np.ascontiguousarray(array)
        array.setflags(write=False)
        return array
    return _validate_resistance(name, value)


def _validate_conductance(value: Any) -> np.ndarray:
    """Return a read-only float64 (M, N) copy of ``value``, or raise :class:`SpecError`."""
    if isinstance(value, np.ndarray):
        # The copy below is the one large allocation a caller's array causes here.
        check_memory(crossbar_bytes(1, value.size, copies=1),
                     f"a {'x'.join(map(str, value.shape))} conductance array")
    array = as_real_array("conductance", value, error=SpecError, unit="S")
    if array.ndim != 2:
        raise SpecError(
            f"conductance must be a 2-D (M, N) array of siemens, got shape {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise SpecError(
            f"conductance must have at least one row and one column, got shape {array.shape}"
        )
    check_finite_array("conductance", array, error=SpecError, lo=0.0, hi=MAX_CONDUCTANCE,
                       unit="S")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Crossbar:
    """An M x N memristor crossbar with wire, driver and sense resistances.

    The instance is immutable and validated on construction; use :meth:`replace`
    to derive a modified copy.

    Parameters
    ----------
    conductance : array_like, shape (M, N)
        Cell conductances ``G[i, j]`` in siemens (S), finite and >= 0. A zero is an
        open cell. The array is copied and stored read-only as float64.
    r_row : float
        Resistance of one row (word-line) wire segment, in ohms. Each row has N
        segments; the first sits between the driver and cell (i, 0).
    r_col : float
        Resistance of one column (bit-line) wire segment, in ohms. Each column has
        M segments; the last sits between cell (M-1, j) and the sense node.
    r_driver : float, optional
        Output resistance of each row driver, in ohms (0 = ideal source).
    r_sense : float, optional
        Resistance between each column's sense node and the sense amplifier's
        virtual ground, in ohms (0 = ideal transimpedance amplifier).
    device : Device, optional
        Cell model (:mod:`xbar_circuit.devices`), default :class:`Linear` (``i = G v``).
        ``conductance`` is then the programmed (small-signal) conductance.
    driver_side : {"left", "right", "both"}, optional
        Which end(s) of each row a driver (``V[i]`` behind ``r_driver``) sits at.
        With ``"both"`` a row has N + 1 segments (one more between r(i, N-1) and the
        right driver); per-segment ``r_row`` then has shape (M, N + 1).
    sense_side : {"bottom", "top"}, optional
        Which end of each column its sense amplifier sits at.
    tia : TIA, optional
        Finite-gain op-amp transimpedance amplifier per column (default: ideal
        virtual ground). Exclusive with ``sense_load``.
    sense_load : float, optional
        A plain sense resistor to ground, in ohms (> 0), instead of a TIA; the sense
        voltages are reported.

    Per-segment wires: ``r_row`` may be an (M, N) array (segment (i, j) is the one
    cell (i, j) owns: on its driver side; (M, N + 1) for ``driver_side="both"``,
    segment k between r(i, k-1) and r(i, k), with r(i, -1) / r(i, N) the drivers);
    ``r_col`` an (M, N) array (segment (i, j) on the sense side of cell (i, j)).

    Raises
    ------
    SpecError
        (a ``ValueError``) naming the offending field and value, for a conductance
        that is not 2-D, is empty, has NaN/inf or negative entries, or a resistance
        that is negative, non-finite or not a number.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> xbar = Crossbar(np.full((2, 3), 1e-4), r_row=1.0, r_col=1.0)
    >>> xbar.shape
    (2, 3)
    >>> Crossbar.from_json(xbar.to_json()) == xbar
    True
    """

    conductance: np.ndarray
    r_row: float | np.ndarray
    r_col: float | np.ndarray
    r_driver: float = 0.0
    r_sense: float = 0.0
    device: Device = dataclasses.field(default_factory=Linear, kw_only=True)
    driver_side: str = dataclasses.field(default="left", kw_only=True)
    sense_side: str = dataclasses.field(default="bottom", kw_only=True)
    tia: TIA | None = dataclasses.field(default=None, kw_only=True)
    sense_load: float | None = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        g = _validate_conductance(self.conductance)
        object.__setattr__(self, "conductance", g)
        m, n = g.shape
        if self.driver_side not in DRIVER_SIDES:
            raise SpecError(f"driver_side must be one of {DRIVER_SIDES}, got "
                            f"{self.driver_side!r}")
        if self.sense_side not in SENSE_SIDES:
            raise SpecError(f"sense_side must be one of {SENSE_SIDES}, got {self.sense_side!r}")
        n_row = n + 1 if self.driver_side == "both" else n
        object.__setattr__(self, "r_row", _validate_wire("r_row", self.r_row, (m, n_row)))
        object.__setattr__(self, "r_col", _validate_wire("r_col", self.r_col, (m, n)))
        for name in ("r_driver", "r_sense"):
            object.__setattr__(self, name, _validate_resistance(name, getattr(self, name)))
        if not isinstance(self.device, Device):
            raise SpecError(f"device must be an xbar_circuit.devices model (e.g. Linear(), "
                            f"Sinh(k)), got {self.device!r}")
        if self.device.kind in ("selector", "transistor"):
            raise SpecError(f"device {self.device.kind!r} has no memory element; use it "
                            "inside OneS1R / OneT1R")
        if self.tia is not None and not isinstance(self.tia, TIA):
            raise SpecError(f"tia must be an xbar_circuit.TIA or None, got {self.tia!r}")
        if self.sense_load is not None:
            load = _validate_resistance("sense_load", self.sense_load)
            if load <= 0.0:
                raise SpecError(f"sense_load must be > 0 ohm (None for a TIA), got {load!r}")
            if self.tia is not None:
                raise SpecError("give either tia or sense_load, not both")
            object.__setattr__(self, "sense_load", load)

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``: number of rows (word lines) and columns (bit lines)."""
        return self.conductance.shape  # type: ignore[return-value]

    @property
    def n_rows(self) -> int:
        """M, the number of rows (word lines, driven inputs)."""
        return int(self.conductance.shape[0])

    @property
    def n_cols(self) -> int:
        """N, the number of columns (bit lines, sensed outputs)."""
        return int(self.conductance.shape[1])

    @property
    def is_ideal(self) -> bool:
        """True when every wire, driver, sense and port resistance is zero.

        For a linear device the output is then ``I = V·G`` exactly.
        """
        return (all(np.all(np.asarray(getattr(self, name)) == 0.0)
                    for name in _RESISTANCE_FIELDS)
                and self.tia is None and self.sense_load is None)

    @property
    def is_default_topology(self) -> bool:
        """True for the default circuit: linear cells, left drivers, bottom sense amplifiers,
        ideal virtual grounds and scalar wire resistances (docs/convention.md §1)."""
        return (type(self.device) is Linear and self.driver_side == "left"
                and self.sense_side == "bottom" and self.tia is None
                and self.sense_load is None and isinstance(self.r_row, float)
                and isinstance(self.r_col, float))

    @property
    def is_linear(self) -> bool:
        """True when the cell model is linear (``i = G v``)."""
        return self.device.is_linear

    @property
    def port_resistance(self) -> float:
        """Resistance from each column's virtual-ground node to ground, in ohms:
        0 (ideal TIA), ``R_f / (1 + A)`` (finite-gain TIA) or ``sense_load``."""
        if self.tia is not None:
            return self.tia.input_resistance
        if self.sense_load is not None:
            return self.sense_load
        return 0.0

    def gate_voltages(self, v_gate: Any = None) -> np.ndarray | None:
        """Per-row gate voltages in volts, shape (M,), for a gated device (else None).

        Parameters
        ----------
        v_gate : float or array_like of shape (M,), optional
            Gate-line voltage of each row (1T1R: gate-source voltage of its access
            transistors), volts. Default: the device's ``v_gate`` on every row.

        Raises
        ------
        SpecError
            For a gate voltage given to a device without gates, a wrong shape or a
            non-finite value.
        """
        if not self.device.uses_gate:
            if v_gate is not None:
                raise SpecError(f"v_gate was given but the device {self.device.kind!r} has no "
                                "gate (only OneT1R cells have one)")
            return None
        if v_gate is None:
            v_gate = self.device.v_gate  # type: ignore[attr-defined]
        try:
            gates = np.array(np.broadcast_to(np.asarray(v_gate, dtype=np.float64),
                                             (self.n_rows,)))
        except (TypeError, ValueError):
            raise SpecError(f"v_gate must be a number or an array of shape ({self.n_rows},) "
                            f"volts, got {v_gate!r}") from None
        if not np.all(np.isfinite(gates)):
            raise SpecError("v_gate must be finite")
        gates.setflags(write=False)
        return gates

    def row_segments(self) -> np.ndarray:
        """Row segment resistances in ohms, shape (M, N) or (M, N + 1) for ``"both"``.

        Segment (i, k) of a ``"left"`` row lies between r(i, k-1) (the driver for
        k = 0) and r(i, k); of a ``"right"`` row between r(i, k) and r(i, k+1) (the
        driver for k = N-1); of a ``"both"`` row between r(i, k-1) and r(i, k) with
        r(i, -1) the left and r(i, N) the right driver.
        """
        m, n = self.shape
        width = n + 1 if self.driver_side == "both" else n
        return np.broadcast_to(np.asarray(self.r_row, float), (m, width))

    def col_segments(self) -> np.ndarray:
        """Column segment resistances in ohms, shape (M, N).

        Segment (i, j) lies on the sense side of cell (i, j): between c(i, j) and
        c(i+1, j) (the sense node for i = M-1) for ``"bottom"``, between c(i, j) and
        c(i-1, j) (the sense node for i = 0) for ``"top"``.
        """
        return np.broadcast_to(np.asarray(self.r_col, float), self.shape)

    # ------------------------------------------------------------- derivation
    def replace(self, **changes: Any) -> Crossbar:
        """Return a validated copy with some fields changed.

        Parameters
        ----------
        **changes
            Field names (``conductance``, ``r_row``, ``r_col``, ``r_driver``,
            ``r_sense``, ``device``, ``driver_side``, ``sense_side``, ``tia``,
            ``sense_load``) and their new values, in SI units.

        Returns
        -------
        Crossbar
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(self))
            raise SpecError(f"Crossbar has no field(s) {', '.join(sorted(unknown))}; "
                            f"known: {known}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def random(
        cls,
        n_rows: int,
        n_cols: int,
        *,
        r_row: float,
        r_col: float,
        r_driver: float = 0.0,
        r_sense: float = 0.0,
        g_off: float = 1e-6,
        g_on: float = 1e-4,
        density: float | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> Crossbar:
        """Build a crossbar with seeded random conductances.

        Parameters
        ----------
        n_rows, n_cols : int
            Array size M x N.
        r_row, r_col, r_driver, r_sense : float
            Resistances in ohms, as in :class:`Crossbar`.
        g_off, g_on : float
            OFF and ON conductances in siemens (the device range). Without ``density``
            each cell is uniform in ``[g_off, g_on]``; with it, each cell is ``g_on``
            with probability ``density`` and ``g_off`` otherwise. The former names
            ``g_min`` and ``g_max`` are accepted with a :class:`DeprecationWarning`.
        density : float, optional
            Probability in [0, 1] that a cell is ON (binary on/off array).
        seed : int, optional
            Seed of :func:`numpy.random.default_rng`, for reproducible arrays.
        **options
            Keyword options of :class:`Crossbar` (``device``, ``driver_side``...).

        Returns
        -------
        Crossbar

        Examples
        --------
        >>> xbar = Crossbar.random(4, 5, r_row=1.0, r_col=1.0, density=0.5, seed=0)
        >>> sorted(set(xbar.conductance.ravel().tolist()))
        [1e-06, 0.0001]
        """
        m = check_int("n_rows", n_rows, 1, error=SpecError)
        n = check_int("n_cols", n_cols, 1, error=SpecError)
        resolved = renamed_keywords(options, {"g_min": "g_off", "g_max": "g_on"},
                                    "Crossbar.random", {"g_off": g_off, "g_on": g_on},
                                    {"g_off": 1e-6, "g_on": 1e-4})
        g_off = check_real("g_off", resolved["g_off"], 0.0, MAX_CONDUCTANCE, error=SpecError,
                           unit="S")
        g_on = check_real("g_on", resolved["g_on"], 0.0, MAX_CONDUCTANCE, error=SpecError,
                          unit="S")
        if g_off > g_on:
            raise SpecError(f"need g_off <= g_on, got g_off={g_off!r} S, g_on={g_on!r} S")
        if density is not None:
            density = check_real("density", density, 0.0, 1.0, error=SpecError)
        if seed is not None:
            seed = check_int("seed", seed, 0, error=SpecError)
        # The draws, their float64 result and the validated copy exist at once.
        check_memory(crossbar_bytes(m, n, copies=3), f"a random {m}x{n} crossbar")
        rng = np.random.default_rng(seed)
        if density is None:
            conductance = rng.uniform(g_off, g_on, size=(m, n))
        else:
            on = rng.random((m, n)) < density
            conductance = np.where(on, g_on, g_off)
        return cls(conductance, r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense,
                   **options)

    # ------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (floats are kept exactly by :mod:`json`).

        The default circuit is written as version 1 (the format readers of version 1
        using any variant option is written as version 2 with the extra fields.
        """
        wire = (lambda x: x.tolist() if isinstance(x, np.ndarray) else x)  # noqa: E731
        out: dict[str, Any] = {
            "format": JSON_FORMAT,
            "version": 1 if self.is_default_topology else 2,
            "shape": list(self.shape),
            "r_row": wire(self.r_row),
            "r_col": wire(self.r_col),
            "r_driver": self.r_driver,
            "r_sense": self.r_sense,
        }
        if not self.is_default_topology:
            out["device"] = self.device.to_dict()
            out["driver_side"] = self.driver_side
            out["sense_side"] = self.sense_side
            out["tia"] = None if self.tia is None else self.tia.to_dict()
            out["sense_load"] = self.sense_load
        out["conductance"] = self.conductance.tolist()
        return out

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text; :meth:`from_json` restores every value bit for bit.

        Parameters
        ----------
        indent : int, optional
            Indentation passed to :func:`json.dumps`.

        Returns
        -------
        str
        """
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> Crossbar:
        """Build a crossbar from the dict written by :meth:`to_dict`.

        Raises
        ------
        SpecError
            If the dict is not an xbar-circuit crossbar of a known version, misses a
            field, or holds invalid values (malformed content of any kind, e.g. a
            non-list shape, an unhashable device type or numbers too large for a
            float, is reported as a SpecError too).
        """
        try:
            return cls._from_dict(data)
        except SpecError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError,
                RecursionError) as exc:
            raise SpecError(f"malformed crossbar spec: {type(exc).__name__}: "
                            f"{short_repr(str(exc))}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> Crossbar:
        if not isinstance(data, dict):
            raise SpecError(f"a crossbar spec must be a JSON object, got {type(data).__name__}")
        if data.get("format") != JSON_FORMAT:
            raise SpecError(
                f"not an xbar-circuit crossbar spec: 'format' is {short_repr(data.get('format'))}, "
                f"expected {JSON_FORMAT!r}"
            )
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) \
                or version not in JSON_VERSIONS:
            raise SpecError(
                f"unsupported crossbar spec version {short_repr(version)} "
                f"(this xbar-circuit reads versions {', '.join(map(str, JSON_VERSIONS))})"
            )
        missing = [k for k in ("conductance", "r_row", "r_col") if k not in data]
        if missing:
            raise SpecError(f"crossbar spec is missing field(s): {', '.join(missing)}")
        known = {"format", "version", "shape", "conductance", *_RESISTANCE_FIELDS}
        if version == 2:
            known |= set(_V2_FIELDS)
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"crossbar spec (version {version}) has unknown field(s): "
                            f"{short_repr(', '.join(sorted(map(str, unknown))))}")
        if version == 1:
            per_segment = [k for k in ("r_row", "r_col") if isinstance(data[k], (list, tuple))
                           or (isinstance(data[k], np.ndarray) and data[k].ndim > 0)]
            if per_segment:
                raise SpecError(f"crossbar spec version 1 takes scalar wire resistances only; "
                                f"{', '.join(per_segment)} must be a number of ohms (per-segment "
                                "wire arrays are a version 2 field)")
        extra: dict[str, Any] = {}
        if version == 2:
            if "device" in data:
                extra["device"] = device_from_dict(data["device"])
            for name in ("driver_side", "sense_side", "sense_load"):
                if name in data:
                    extra[name] = data[name]
            if data.get("tia") is not None:
                extra["tia"] = TIA.from_dict(data["tia"])
        xbar = cls(
            data["conductance"],
            r_row=data["r_row"],
            r_col=data["r_col"],
            r_driver=data.get("r_driver", 0.0),
            r_sense=data.get("r_sense", 0.0),
            **extra,
        )
        if "shape" in data and list(data["shape"]) != list(xbar.shape):
            raise SpecError(
                f"crossbar spec 'shape' {short_repr(data['shape'])} does not match the conductance "
                f"array's shape {list(xbar.shape)}"
            )
        return xbar

    @classmethod
    def from_json(cls, text: str) -> Crossbar:
        """Parse JSON text written by :meth:`to_json`.

        Raises
        ------
        SpecError
            If the text is not valid JSON or not a valid crossbar spec.
        """
        if not isinstance(text, (str, bytes, bytearray)):
            raise SpecError(f"a crossbar spec must be JSON text, got {type(text).__name__}")
        return cls.from_dict(load_json(text, "crossbar spec", error=SpecError))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the spec as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json(indent=1))
            handle.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Crossbar:
        """Read a spec written by :meth:`save` (or any :meth:`to_json` text).

        Raises
        ------
        SpecError
            If the file's content is not a valid crossbar spec (the message names the file).
        """
        try:
            name = os.fspath(path)
        except TypeError:
            raise SpecError(f"a spec path must be a string or path, got "
                            f"{short_repr(path)}") from None
        try:
            # Parsed JSON takes several times the file's size (Python floats and lists).
            check_memory(8 * os.path.getsize(name), f"reading the spec file {name}")
            with open(name, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            raise SpecError(f"{name}: not a text (UTF-8 JSON) file") from None
        except IsADirectoryError:
            raise SpecError(f"{name}: is a directory, not a spec file") from None
        except OSError as exc:
            raise SpecError(f"cannot read the spec file {name}: {exc.strerror or exc}") from None
        try:
            return cls.from_json(text)
        except SpecError as exc:
            raise SpecError(f"{name}: {exc}") from None

    # --------------------------------------------------------------- equality
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crossbar):
            return NotImplemented
        def same(a: Any, b: Any) -> bool:
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                        and a.shape == b.shape and bool(np.array_equal(a, b)))
            return bool(a == b)

        return (
            all(same(getattr(self, n), getattr(other, n)) for n in _RESISTANCE_FIELDS)
            and self.conductance.shape == other.conductance.shape
            and bool(np.array_equal(self.conductance, other.conductance))
            and all(getattr(self, n) == getattr(other, n) for n in _V2_FIELDS)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        m, n = self.shape
        g = self.conductance
        wire = (lambda x: f"array{x.shape}" if isinstance(x, np.ndarray) else repr(x))  # noqa: E731
        extra = ""
        if not self.is_default_topology:
            extra = (f", device={self.device!r}, driver_side={self.driver_side!r}, "
                     f"sense_side={self.sense_side!r}, tia={self.tia!r}, "
                     f"sense_load={self.sense_load!r}")
        return (
            f"Crossbar({m}x{n}, G in [{g.min():.3g}, {g.max():.3g}] S, r_row={wire(self.r_row)}, "
            f"r_col={wire(self.r_col)}, r_driver={self.r_driver!r}, "
            f"r_sense={self.r_sense!r}{extra})"
        )
