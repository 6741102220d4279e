"""Checkpoints of a calibration: one file per finished grid point, safe to resume from.

Checkpoints live in ``TABLE.partial/``: ``sweep.json`` (the exact sweep) and one
``point-NNNNNNN.npz`` per finished grid point (plain float arrays, read with
``allow_pickle=False``), each written under a temporary name and moved into place with
:func:`os.replace`, so a point file is either complete or absent. The client process
writes every checkpoint itself, once per point, so workers need no shared disk and a
worker that dies only costs its running point. A checkpoint is checked against the
sweep (field names, dtypes and shapes, read from the headers before any data) whenever
it is read.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
import zipfile
from typing import Any

import numpy as np

from .._validate import load_json, short_repr
from ._errors import TableError
from .schema import POINT_KEYS, point_shapes
from .sweep import Sweep

__all__ = ["partial_dir", "point_path", "prepare_partial", "read_point", "write_point"]

logger = logging.getLogger(__name__)

_MAX_MARKER_BYTES = 1 << 20


def partial_dir(output: str) -> str:
    """The checkpoint directory of the table ``output``: ``output + ".partial"``.

    Parameters
    ----------
    output : str
        Path of the table file.

    Returns
    -------
    str
    """
    return os.fspath(output) + ".partial"


def point_path(partial: str, index: int) -> str:
    """The checkpoint file of grid point ``index`` in ``partial``.

    Parameters
    ----------
    partial : str
        Checkpoint directory.
    index : int
        Flat index of the grid point.

    Returns
    -------
    str
        ``partial/point-NNNNNNN.npz``.
    """
    return os.path.join(partial, f"point-{index:07d}.npz")


def _read_marker(partial: str, marker: str) -> Any:
    """The sweep recorded in ``partial``; TableError when it is missing or corrupt."""
    restart = "delete the directory (or use another output name) to start again"
    if not os.path.lexists(marker):
        raise TableError(f"{partial} has no sweep.json, so it is not (or no longer) a "
                         f"checkpoint directory of calibrate; {restart}")
    if not os.path.isfile(marker):
        raise TableError(f"corrupt checkpoint directory {partial}: sweep.json is not a "
                         f"regular file; {restart}")
    try:
        with open(marker, "rb") as handle:
            raw = handle.read(_MAX_MARKER_BYTES + 1)
    except OSError as exc:
        raise TableError(f"cannot read {marker}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_MARKER_BYTES:
        raise TableError(f"corrupt checkpoint directory {partial}: sweep.json is larger "
                         f"than any sweep ({_MAX_MARKER_BYTES} bytes); {restart}")
    try:
        old = load_json(raw, f"{marker}", error=TableError)
    except TableError as exc:
        raise TableError(f"corrupt checkpoint directory {partial}: {exc}; {restart}") from None
    if not isinstance(old, dict) or old.get("format") != "xbar-circuit/sweep":
        raise TableError(f"corrupt checkpoint directory {partial}: sweep.json does not "
                         f"describe a sweep; {restart}")
    return old


def prepare_partial(partial: str, sweep: Sweep) -> set[int]:
    """Create or reuse the checkpoint directory; return the finished point indices.

    Every checkpoint is checked against ``sweep`` (its fields, their dtype and shape);
    a bad one is discarded with a :class:`RuntimeWarning` naming the file and computed
    again.

    Parameters
    ----------
    partial : str
        Checkpoint directory (:func:`partial_dir`).
    sweep : Sweep
        The sweep being computed; a directory made for another sweep is refused.

    Returns
    -------
    set of int
        Flat indices of the grid points whose checkpoint is complete and valid.

    Raises
    ------
    TableError
        If ``partial`` is not a directory, belongs to a different sweep, is corrupt, or
        cannot be created.
    """
    marker = os.path.join(partial, "sweep.json")
    if os.path.lexists(partial) and not os.path.isdir(partial):
        raise TableError(f"{partial} exists and is not a directory; calibrate keeps its "
                         "checkpoints there: remove it or choose another output name")
    if os.path.isdir(partial):
        if _read_marker(partial, marker) != json.loads(sweep.to_json()):
            raise TableError(
                f"{partial} holds checkpoints of a different sweep; delete it (or use another "
                "output name) to start again")
    else:
        try:
            os.makedirs(partial)
            _atomic_write_text(marker, sweep.to_json())
        except OSError as exc:
            raise TableError(f"cannot create the checkpoint directory {partial}: "
                             f"{exc.strerror or exc}") from None
    done = set()
    for name in os.listdir(partial):
        if not (name.startswith("point-") and name.endswith(".npz")):
            continue
        try:
            index = int(name[6:-4])
        except ValueError:
            continue
        if index >= sweep.n_points:
            continue
        try:
            read_point(partial, index, sweep)
        except TableError as exc:
            warnings.warn(f"{exc}; discarding it, the point will be computed again",
                          RuntimeWarning, stacklevel=3)
            try:
                os.remove(os.path.join(partial, name))
            except OSError as err:
                raise TableError(f"cannot remove the corrupt checkpoint "
                                 f"{os.path.join(partial, name)}: {err}") from None
            continue
        done.add(index)
    if done:
        logger.info("resuming from %s: %d of %d grid points already computed", partial,
                    len(done), sweep.n_points)
    return done


def _atomic_write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_point(partial: str, index: int, result: dict[str, np.ndarray]) -> None:
    """Write grid point ``index``'s checkpoint atomically, unless it exists already.

    Parameters
    ----------
    partial : str
        Checkpoint directory.
    index : int
        Flat index of the grid point.
    result : dict of str to ndarray
        The fields :data:`~.schema.POINT_KEYS` (stored as float64).
    """
    final = point_path(partial, index)
    if os.path.exists(final):  # never write a point twice
        return
    fd, tmp = tempfile.mkstemp(prefix=f".point-{index:07d}-", suffix=".npz", dir=partial)
    with os.fdopen(fd, "wb") as handle:
        arrays: dict[str, Any] = {k: np.asarray(result[k], dtype=np.float64)
                                  for k in POINT_KEYS}
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _npy_header(member: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an .npy header, without reading the data."""
    from numpy.lib import format as npy

    version = npy.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _, dtype = npy.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(shape), dtype


def read_point(partial: str, index: int, sweep: Sweep) -> dict[str, np.ndarray]:
    """Read one checkpoint; TableError naming the file if it is unreadable, incomplete or
    does not fit grid point ``index`` of ``sweep`` (a field's dtype or shape).

    The shapes and dtypes are read from the headers first, so a file declaring a huge
    array is refused before anything is allocated for it.

    Parameters
    ----------
    partial : str
        Checkpoint directory.
    index : int
        Flat index of the grid point.
    sweep : Sweep
        The sweep the checkpoint must fit.

    Returns
    -------
    dict of str to ndarray
        The fields :data:`~.schema.POINT_KEYS`.

    Raises
    ------
    TableError
        If the file is unreadable, incomplete, of the wrong dtype or shape, or holds
        infinite values.
    """
    path = point_path(partial, index)
    expected = point_shapes(sweep, index)
    problem = None
    try:
        with zipfile.ZipFile(path) as archive:
            for key in POINT_KEYS:
                with archive.open(f"{key}.npy") as member:
                    shape, dtype = _npy_header(member)
                if dtype != np.float64:
                    problem = f"{key!r} has dtype {dtype}, expected float64"
                elif shape != expected[key]:
                    problem = (f"{key!r} has shape {shape}, expected {expected[key]} for "
                               f"grid point {index} of this sweep")
                if problem:
                    break
        if problem is None:
            with np.load(path, allow_pickle=False) as data:
                out = {k: np.array(data[k]) for k in POINT_KEYS}
    except Exception as exc:  # ValueError, OSError, KeyError, zipfile.BadZipFile, ...
        raise TableError(f"corrupt checkpoint {path} ({type(exc).__name__}: "
                         f"{short_repr(str(exc))})") from None
    if problem is not None:
        raise TableError(f"corrupt checkpoint {path}: {problem}")
    for key, value in out.items():
        if np.isinf(value).any():
            raise TableError(f"corrupt checkpoint {path}: {key!r} holds infinite values")
    return out

