"""Sweep descriptions: the grid of parameters a calibration table is computed on.

A sweep is a small YAML or JSON file (or a :class:`Sweep` built in Python). Example::

    format: xbar-circuit/sweep
    version: 1
    name: quick
    grid:
      rows: [16, 32]          # M, number of word lines
      cols: [16, 32]          # N, number of bit lines
      r_row: [1.0, 4.0]       # ohm per row-wire segment
      r_col: [1.0, 4.0]       # ohm per column-wire segment
      r_driver: [0.0]         # ohm (optional, default [0.0])
      r_sense: [0.0]          # ohm (optional, default [0.0])
      g_on: [1.0e-5]          # siemens, ON cells
      g_off: [1.0e-7]         # siemens, OFF cells
      density: [0.2, 0.8]     # probability that a cell is ON
    device: {model: linear}   # only "linear" for now
    inputs: {pattern: ones, v_read: 0.2}
    samples: 4                # random arrays per grid point
    seed: 2024
    backend: nodal
    map_max: 64               # attenuation maps keep at most 64 x 64 cells

The table is the Cartesian product of the ``grid`` axes, in the order of :data:`DIMS`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from typing import Any

import numpy as np

from .._validate import (
    MAX_CONDUCTANCE,
    MAX_RESISTANCE,
    MAX_VOLTAGE,
    check_int,
    check_real,
    load_json,
    short_repr,
)
from ._errors import SweepError

__all__ = ["DIMS", "INPUT_PATTERNS", "SWEEP_FORMAT", "SWEEP_VERSION", "Sweep"]

SWEEP_FORMAT = "xbar-circuit/sweep"
SWEEP_VERSION = 1

DIMS: tuple[str, ...] = (
    "rows", "cols", "r_row", "r_col", "r_driver", "r_sense", "g_on", "g_off", "density",
)
"""Grid axes, in the order of the table's dimensions."""

_UNITS = {
    "rows": "cells", "cols": "cells", "r_row": "ohm", "r_col": "ohm", "r_driver": "ohm",
    "r_sense": "ohm", "g_on": "S", "g_off": "S", "density": "1",
}
_REQUIRED_GRID = ("rows", "cols", "r_row", "r_col", "g_on", "g_off", "density")
_OPTIONAL_GRID = {"r_driver": [0.0], "r_sense": [0.0]}
_TOP_KEYS = {"format", "version", "name", "grid", "device", "inputs", "samples", "seed",
             "backend", "map_max"}
DEVICE_MODELS = ("linear",)
MAX_LINES = 2**31 - 1
"""Largest number of rows or columns of a grid point (the kernels index with int32)."""
MAX_SWEEP_FILE_BYTES = 1 << 20
"""Largest sweep file read, in bytes (real sweeps are a few hundred bytes)."""
INPUT_PATTERNS = ("ones", "random_binary", "random_uniform")


def _number(where: str, value: Any, unit: str) -> float:
    """A finite real number; YAML 1.1 strings such as ``1e-4`` (no dot) are converted."""
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise SweepError(f"{where} must hold numbers ({unit}), "
                             f"got {short_repr(value)}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SweepError(f"{where} must hold numbers ({unit}), got {short_repr(value)}")
    return check_real(where, value, error=SweepError, unit=unit)


def _axis(name: str, raw: Any) -> list[float] | list[int]:
    """Validate one grid axis and return it sorted ascending."""
    values = raw if isinstance(raw, (list, tuple)) else [raw]
    if len(values) == 0:
        raise SweepError(f"grid.{name} is empty; give at least one value")
    out: list[Any] = []
    for value in values:
        value = _number(f"grid.{name}", value, _UNITS[name])
        if name in ("rows", "cols"):
            if not value.is_integer() or not 1 <= value <= MAX_LINES:
                raise SweepError(f"grid.{name} must hold integers in [1, {MAX_LINES}], "
                                 f"got {value!r}")
            out.append(int(value))
        else:
            if value < 0:
                raise SweepError(f"grid.{name} must be >= 0 {_UNITS[name]}, got {value!r}")
            if name in ("g_on",) and value <= 0:
                raise SweepError(f"grid.g_on must be > 0 S, got {value!r}")
            if name == "density" and value > 1:
                raise SweepError(f"grid.density must be in [0, 1], got {value!r}")
            if name in ("g_on", "g_off") and value > MAX_CONDUCTANCE:
                raise SweepError(f"grid.{name} must be <= {MAX_CONDUCTANCE:g} S, got {value!r}")
            if name.startswith("r_") and value > MAX_RESISTANCE:
                raise SweepError(f"grid.{name} must be <= {MAX_RESISTANCE:g} ohm, "
                                 f"got {value!r}")
            out.append(value)
    if len(set(out)) != len(out):
        raise SweepError(f"grid.{name} has repeated values: {short_repr(values)}")
    return sorted(out)


def _is_one_of(value: Any, choices: tuple[str, ...]) -> bool:
    """Whether ``value`` is one of the strings ``choices`` (arrays and other objects whose
    ``==`` is not a plain bool never are)."""
    return isinstance(value, str) and value in choices


def _names(keys: Any) -> str:
    """At most ten of ``keys``, sorted, for a message."""
    names = sorted(short_repr(k, 40) if not isinstance(k, str) else k[:40] for k in keys)
    return ", ".join(names[:10]) + (f" (and {len(names) - 10} more)" if len(names) > 10 else "")


def _yaml_load(text: str, path: str) -> Any:
    """Parse YAML with the safe loader, refusing anchors and aliases.

    An alias repeats a node by reference, so a few hundred bytes of nested aliases
    expand into gigabytes once the document is walked ("billion laughs"). Sweep files
    are small and gain nothing from them.
    """
    from .._optional import import_optional

    yaml: Any = import_optional("yaml", "reading a YAML sweep file")

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
                raise SweepError(f"{path}: line {line}: YAML {kind} "
                                 f"{short_repr(event.anchor, 40)} is not accepted in a sweep "
                                 "file (anchors and aliases are refused); write the values out")
            return super().compose_node(parent, index)

    try:
        # NoAliasLoader is a SafeLoader: plain scalars, lists and mappings only.
        return yaml.load(text, Loader=NoAliasLoader)
    except SweepError:
        raise
    except RecursionError:
        raise SweepError(f"{path}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML/JSON: {_clip(str(exc))}") from None


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated sweep description (immutable).

    Parameters
    ----------
    grid : dict
        Axis name -> list of values, for every name in :data:`DIMS`: ``rows``, ``cols``
        (cells), ``r_row``, ``r_col``, ``r_driver``, ``r_sense`` (ohm), ``g_on``, ``g_off``
        (siemens) and ``density`` (ON probability, in [0, 1]). Scalars count as
        one-value lists; ``r_driver`` and ``r_sense`` default to ``[0.0]``.
    samples : int
        Random arrays solved per grid point (>= 1).
    seed : int
        Root seed (>= 0). Every point's arrays derive from ``(seed, rows index, cols index,
        sample)`` alone, so a table does not depend on how the work is scheduled.
    name : str, optional
        Label stored in the table.
    device : dict, optional
        ``{"model": "linear", "params": {}}``; only the linear conductance model exists.
    inputs : dict, optional
        ``pattern`` (``"ones"``: every row at ``v_read``; ``"random_binary"``: each row at
        ``v_read`` with probability ``density``, else 0 V; ``"random_uniform"``: uniform
        in [0, ``v_read``]), ``v_read`` in volts (default 0.2), ``density`` (default 0.5).
    backend : str, optional
        Backend of the exact solves (default ``"nodal"``).
    map_max : int, optional
        Attenuation maps keep at most ``map_max`` evenly spaced rows and columns of cells
        (all of them for smaller arrays). Default 64.

    Examples
    --------
    >>> from xbar_circuit.tables import Sweep
    >>> sweep = Sweep.from_dict({"grid": {"rows": [4, 8], "cols": 8, "r_row": 1.0,
    ...     "r_col": 1.0, "g_on": 1e-5, "g_off": 1e-7, "density": [0.5]},
    ...     "samples": 2, "seed": 0})
    >>> sweep.shape, sweep.n_points
    ((2, 1, 1, 1, 1, 1, 1, 1, 1), 2)
    >>> sweep.point(1)["rows"]
    8
    """

    grid: dict[str, list[Any]]
    samples: int
    seed: int
    name: str = "sweep"
    device: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"model": "linear", "params": {}})
    inputs: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"pattern": "ones", "v_read": 0.2, "density": 0.5})
    backend: str = "nodal"
    map_max: int = 64

    # ---------------------------------------------------------------- parsing
    @classmethod
    def from_dict(cls, data: Any) -> Sweep:
        """Validate a sweep dict (as read from YAML/JSON) and build the sweep.

        Raises
        ------
        SweepError
            For unknown keys, missing fields, or bad values (the message names them).
        """
        if not isinstance(data, dict):
            raise SweepError(f"a sweep must be a mapping, got {type(data).__name__}")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise SweepError(f"unknown sweep key(s): {_names(unknown)}; "
                             f"known: {', '.join(sorted(_TOP_KEYS))}")
        if not _is_one_of(data.get("format", SWEEP_FORMAT), (SWEEP_FORMAT,)):
            raise SweepError(f"not a sweep: 'format' is {short_repr(data.get('format'))}, "
                             f"expected {SWEEP_FORMAT!r}")
        version = data.get("version", SWEEP_VERSION)
        if isinstance(version, bool) or not isinstance(version, int) \
                or version != SWEEP_VERSION:
            raise SweepError(f"unsupported sweep version {short_repr(data.get('version'))} "
                             f"(this xbar-circuit reads version {SWEEP_VERSION})")
        missing = [k for k in ("grid", "samples", "seed") if k not in data]
        if missing:
            raise SweepError(f"sweep is missing field(s): {', '.join(missing)}")
        raw_grid = data["grid"]
        if not isinstance(raw_grid, dict):
            raise SweepError("sweep 'grid' must be a mapping of axis name -> list of values")
        unknown = set(raw_grid) - set(DIMS)
        if unknown:
            raise SweepError(f"unknown grid axis(es): {_names(unknown)}; "
                             f"known: {', '.join(DIMS)}")
        missing = [k for k in _REQUIRED_GRID if k not in raw_grid]
        if missing:
            raise SweepError(f"sweep grid is missing axis(es): {', '.join(missing)}")
        grid = {name: _axis(name, raw_grid.get(name, _OPTIONAL_GRID.get(name))) for name in DIMS}
        if max(grid["g_off"]) >= min(grid["g_on"]):
            raise SweepError(f"every g_off must be below every g_on, got g_off={grid['g_off']} "
                             f"S and g_on={grid['g_on']} S")
        if 0.0 in grid["g_off"] and 0.0 in grid["density"]:
            raise SweepError("grid has g_off = 0 together with density = 0: such an array has "
                             "no conducting cell, so no ideal current and an undefined NF; "
                             "drop density 0 or use g_off > 0")
        samples = check_int("samples", data["samples"], 1, error=SweepError)
        seed = check_int("seed", data["seed"], 0, error=SweepError)
        device = data.get("device", {"model": "linear"})
        if isinstance(device, str):
            device = {"model": device}
        if not isinstance(device, dict) or set(device) - {"model", "params"}:
            raise SweepError(f"device must be a mapping with 'model' and optional 'params', "
                             f"got {short_repr(device)}")
        if not _is_one_of(device.get("model"), DEVICE_MODELS):
            raise SweepError(f"device model {short_repr(device.get('model'))} is not "
                             "supported yet; "
                             f"supported: {', '.join(DEVICE_MODELS)}")
        params = device.get("params") or {}
        if not isinstance(params, dict) or params:
            raise SweepError(f"the linear device model takes no parameters, "
                             f"got {short_repr(params)}")
        inputs = data.get("inputs", {})
        if not isinstance(inputs, dict):
            raise SweepError(f"inputs must be a mapping, got {short_repr(inputs)}")
        unknown = set(inputs) - {"pattern", "v_read", "density"}
        if unknown:
            raise SweepError(f"unknown inputs key(s): {_names(unknown)}; "
                             "known: density, pattern, v_read")
        pattern = inputs.get("pattern", "ones")
        if not _is_one_of(pattern, INPUT_PATTERNS):
            raise SweepError(f"inputs.pattern must be one of {', '.join(INPUT_PATTERNS)}, "
                             f"got {short_repr(pattern)}")
        v_read = _number("inputs.v_read", inputs.get("v_read", 0.2), "V")
        if not 0 < v_read <= MAX_VOLTAGE:
            raise SweepError(f"inputs.v_read must be a positive number of volts (at most "
                             f"{MAX_VOLTAGE:g} V), got {v_read!r}")
        in_density = check_real("inputs.density", inputs.get("density", 0.5), 0.0, 1.0,
                                error=SweepError, lo_open=True)
        name = data.get("name", "sweep")
        if not isinstance(name, str):
            raise SweepError(f"name must be a string, got {short_repr(name)}")
        if len(name) > 200:
            raise SweepError(f"name must be at most 200 characters, got {len(name)}")
        backend = data.get("backend", "nodal")
        if not _is_one_of(backend, ("nodal", "reference", "ngspice")):
            raise SweepError(f"backend must be 'nodal', 'reference' or 'ngspice', "
                             f"got {short_repr(backend)}")
        map_max = check_int("map_max", data.get("map_max", 64), 2, MAX_LINES, error=SweepError)
        return cls(grid=grid, samples=samples, seed=seed, name=name,
                   device={"model": device["model"], "params": {}},
                   inputs={"pattern": pattern, "v_read": float(v_read),
                           "density": float(in_density)},
                   backend=backend, map_max=map_max)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Sweep:
        """Read a sweep from a ``.yaml``/``.yml`` or ``.json`` file.

        Raises
        ------
        SweepError
            If the file cannot be parsed or is not a valid sweep (the message names it).
        """
        path = os.fspath(path)
        try:
            size = os.path.getsize(path)
            if size > MAX_SWEEP_FILE_BYTES:
                raise SweepError(f"{path}: a sweep file of {size} bytes is too large (at most "
                                 f"{MAX_SWEEP_FILE_BYTES} bytes are read)")
            with open(path, "rb") as handle:
                raw = handle.read(MAX_SWEEP_FILE_BYTES + 1)
        except OSError as exc:
            raise SweepError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SweepError(f"{path}: not a UTF-8 text file (byte {exc.start} is "
                             f"{raw[exc.start:exc.start + 1]!r}); sweep files are YAML or "
                             "JSON text") from None
        if path.endswith(".json"):
            data = load_json(text, path, error=SweepError)
        else:
            data = _yaml_load(text, path)
        try:
            return cls.from_dict(data)
        except SweepError as exc:
            raise SweepError(f"{path}: {exc}") from None

    # ------------------------------------------------------------- serialise
    def to_dict(self) -> dict[str, Any]:
        """Return the full, canonical description (every default filled in)."""
        return {
            "format": SWEEP_FORMAT, "version": SWEEP_VERSION, "name": self.name,
            "grid": {k: list(self.grid[k]) for k in DIMS}, "device": copy.deepcopy(self.device),
            "inputs": dict(self.inputs), "samples": self.samples, "seed": self.seed,
            "backend": self.backend, "map_max": self.map_max,
        }

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys); equal sweeps give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @property
    def digest(self) -> str:
        """SHA-256 of :meth:`to_json`, naming this exact sweep in checkpoints."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    # ----------------------------------------------------------------- points
    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values of each axis, in :data:`DIMS` order."""
        return tuple(len(self.grid[k]) for k in DIMS)

    @property
    def n_points(self) -> int:
        """Number of grid points (product of :attr:`shape`)."""
        return int(np.prod(self.shape))

    def point(self, index: int) -> dict[str, Any]:
        """Parameters of grid point ``index`` (C order over :data:`DIMS`), plus the
        per-axis indices under ``"index"``."""
        if not 0 <= index < self.n_points:
            raise IndexError(f"point index {index} out of range [0, {self.n_points})")
        idx = np.unravel_index(index, self.shape)
        out: dict[str, Any] = {k: self.grid[k][int(i)] for k, i in zip(DIMS, idx, strict=False)}
        out["index"] = tuple(int(i) for i in idx)
        return out

    def map_indices(self, n: int) -> np.ndarray:
        """Cell indices kept in attenuation maps along an axis of ``n`` cells."""
        if n <= self.map_max:
            return np.arange(n)
        return np.unique(np.round(np.linspace(0, n - 1, self.map_max)).astype(np.int64))
