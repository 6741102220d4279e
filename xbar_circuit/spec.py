"""The crossbar specification: one immutable, self-validating description of an array.

The circuit convention (DESIGN.md section 1, a contract that never changes by default):

* Row ``i`` is driven at its **left** end by an ideal source ``V[i]`` in series with
  ``r_driver``; then ``N`` row segments of ``r_row``: driver node -> r(i,0) -> ... -> r(i,N-1).
* Column ``j`` runs from the top, c(0,j) -> ... -> c(M-1,j), through ``M`` segments of
  ``r_col`` to the sense node at the **bottom**, which reaches the virtual ground of an
  ideal transimpedance amplifier through ``r_sense``.
* Cell (i, j) is a conductance ``G[i, j]`` between r(i,j) and c(i,j).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import numpy as np

from .errors import SpecError

__all__ = ["Crossbar", "JSON_FORMAT", "JSON_VERSION"]

JSON_FORMAT = "xbar-circuit/crossbar"
JSON_VERSION = 1

_RESISTANCE_FIELDS = ("r_row", "r_col", "r_driver", "r_sense")


def _validate_resistance(name: str, value: Any) -> float:
    """Return ``value`` as a float in ohms, or raise :class:`SpecError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        else:
            raise SpecError(
                f"{name} must be a real number of ohms, got {value!r} "
                f"(type {type(value).__name__}); per-segment arrays are not supported yet"
            )
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(f"{name} must be finite, got {value!r} ohm")
    if value < 0.0:
        raise SpecError(f"{name} must be >= 0 ohm, got {value!r} ohm")
    return value


def _validate_conductance(value: Any) -> np.ndarray:
    """Return a read-only float64 (M, N) copy of ``value``, or raise :class:`SpecError`."""
    try:
        array = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"conductance must be an (M, N) array of siemens: {exc}") from None
    if array.ndim != 2:
        raise SpecError(
            f"conductance must be a 2-D (M, N) array of siemens, got shape {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise SpecError(
            f"conductance must have at least one row and one column, got shape {array.shape}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise SpecError(
            f"conductance must be finite; conductance[{i}, {j}] = {float(array[i, j])!r} "
            f"({int(bad.sum())} non-finite value(s) in all)"
        )
    negative = array < 0.0
    if negative.any():
        i, j = np.argwhere(negative)[0]
        raise SpecError(
            f"conductance must be >= 0 S; conductance[{i}, {j}] = {float(array[i, j])!r} S "
            f"({int(negative.sum())} negative value(s) in all)"
        )
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
    r_row: float
    r_col: float
    r_driver: float = 0.0
    r_sense: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "conductance", _validate_conductance(self.conductance))
        for name in _RESISTANCE_FIELDS:
            object.__setattr__(self, name, _validate_resistance(name, getattr(self, name)))

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
        """True when every wire, driver and sense resistance is zero (I = V·G exactly)."""
        return all(getattr(self, name) == 0.0 for name in _RESISTANCE_FIELDS)

    # ------------------------------------------------------------- derivation
    def replace(self, **changes: Any) -> Crossbar:
        """Return a validated copy with some fields changed.

        Parameters
        ----------
        **changes
            Field names (``conductance``, ``r_row``, ``r_col``, ``r_driver``,
            ``r_sense``) and their new values, in SI units.

        Returns
        -------
        Crossbar
        """
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
        g_min: float = 1e-6,
        g_max: float = 1e-4,
        density: float | None = None,
        seed: int | None = None,
    ) -> Crossbar:
        """Build a crossbar with seeded random conductances.

        Parameters
        ----------
        n_rows, n_cols : int
            Array size M x N.
        r_row, r_col, r_driver, r_sense : float
            Resistances in ohms, as in :class:`Crossbar`.
        g_min, g_max : float
            Conductance range in siemens. Without ``density`` each cell is uniform in
            ``[g_min, g_max]``; with it, each cell is ``g_max`` (ON) with probability
            ``density`` and ``g_min`` (OFF) otherwise.
        density : float, optional
            Probability in [0, 1] that a cell is ON (binary on/off array).
        seed : int, optional
            Seed of :func:`numpy.random.default_rng`, for reproducible arrays.

        Returns
        -------
        Crossbar

        Examples
        --------
        >>> xbar = Crossbar.random(4, 5, r_row=1.0, r_col=1.0, density=0.5, seed=0)
        >>> sorted(set(xbar.conductance.ravel().tolist()))
        [1e-06, 0.0001]
        """
        if int(n_rows) < 1 or int(n_cols) < 1:
            raise SpecError(f"array size must be at least 1 x 1, got {n_rows} x {n_cols}")
        if not (0.0 <= g_min <= g_max) or not math.isfinite(g_max):
            raise SpecError(f"need 0 <= g_min <= g_max < inf, got g_min={g_min!r}, g_max={g_max!r}")
        rng = np.random.default_rng(seed)
        if density is None:
            conductance = rng.uniform(g_min, g_max, size=(int(n_rows), int(n_cols)))
        else:
            if not 0.0 <= density <= 1.0:
                raise SpecError(f"density must be in [0, 1], got {density!r}")
            on = rng.random((int(n_rows), int(n_cols))) < density
            conductance = np.where(on, g_max, g_min)
        return cls(conductance, r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense)

    # ------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (floats are kept exactly by :mod:`json`)."""
        return {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "shape": list(self.shape),
            "r_row": self.r_row,
            "r_col": self.r_col,
            "r_driver": self.r_driver,
            "r_sense": self.r_sense,
            "conductance": self.conductance.tolist(),
        }

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
            field, or holds invalid values.
        """
        if not isinstance(data, dict):
            raise SpecError(f"a crossbar spec must be a JSON object, got {type(data).__name__}")
        if data.get("format") != JSON_FORMAT:
            raise SpecError(
                f"not an xbar-circuit crossbar spec: 'format' is {data.get('format')!r}, "
                f"expected {JSON_FORMAT!r}"
            )
        if data.get("version") != JSON_VERSION:
            raise SpecError(
                f"unsupported crossbar spec version {data.get('version')!r} "
                f"(this xbar-circuit reads version {JSON_VERSION})"
            )
        missing = [k for k in ("conductance", "r_row", "r_col") if k not in data]
        if missing:
            raise SpecError(f"crossbar spec is missing field(s): {', '.join(missing)}")
        unknown = set(data) - {"format", "version", "shape", "conductance", *_RESISTANCE_FIELDS}
        if unknown:
            raise SpecError(f"crossbar spec has unknown field(s): {', '.join(sorted(unknown))}")
        xbar = cls(
            data["conductance"],
            r_row=data["r_row"],
            r_col=data["r_col"],
            r_driver=data.get("r_driver", 0.0),
            r_sense=data.get("r_sense", 0.0),
        )
        if "shape" in data and list(data["shape"]) != list(xbar.shape):
            raise SpecError(
                f"crossbar spec 'shape' {data['shape']!r} does not match the conductance "
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
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"crossbar spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

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
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            return cls.from_json(text)
        except SpecError as exc:
            raise SpecError(f"{os.fspath(path)}: {exc}") from None

    # --------------------------------------------------------------- equality
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crossbar):
            return NotImplemented
        return (
            all(getattr(self, n) == getattr(other, n) for n in _RESISTANCE_FIELDS)
            and self.conductance.shape == other.conductance.shape
            and bool(np.array_equal(self.conductance, other.conductance))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        m, n = self.shape
        g = self.conductance
        return (
            f"Crossbar({m}x{n}, G in [{g.min():.3g}, {g.max():.3g}] S, r_row={self.r_row!r}, "
            f"r_col={self.r_col!r}, r_driver={self.r_driver!r}, r_sense={self.r_sense!r})"
        )
