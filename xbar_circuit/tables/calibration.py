"""Run a sweep's exact solves (serially or on Dask), checkpoint per point, write the table.

Checkpoints live in ``TABLE.partial/``: ``sweep.json`` (the exact sweep) and one
``point-NNNNNNN.npz`` per finished grid point (plain float arrays, read with
``allow_pickle=False``), each written under a temporary name and moved into place with
:func:`os.replace`, so a point file is either complete or absent. The client process
writes every checkpoint itself, once per point, so workers need no shared disk and a
worker that dies only costs its running point, which Dask computes again elsewhere.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from .._memory import check_memory, sweep_bytes
from .._validate import check_int, load_json, short_repr
from .._version import __version__
from ._errors import SweepError, TableError
from .physics import compute_point
from .sweep import DIMS, Sweep

__all__ = ["SCHEMA", "SCHEMA_VERSION", "CalibrationResult", "assemble", "calibrate"]

SCHEMA = "xbar-circuit/lookup-table"
SCHEMA_VERSION = 1
_MAX_MARKER_BYTES = 1 << 20
_POINT_KEYS = ("nf", "nf_model", "nf_first_order", "nf_columns", "cell_loss", "cell_loss_std",
               "current_attenuation", "model_loss")


@dataclasses.dataclass
class CalibrationResult:
    """What :func:`calibrate` did.

    Attributes
    ----------
    path : str
        The table file written.
    n_points : int
        Grid points in the sweep.
    computed : int
        Points computed by this run (the rest came from checkpoints).
    seconds : float
        Wall time of the compute phase, in seconds.
    workers : int
        Dask workers used (0 for a serial run).
    """

    path: str
    n_points: int
    computed: int
    seconds: float
    workers: int

    @property
    def points_per_second(self) -> float:
        """Computed points per second of wall time."""
        return self.computed / self.seconds if self.seconds > 0 else float("nan")


def _partial_dir(output: str) -> str:
    return os.fspath(output) + ".partial"


def _point_path(partial: str, index: int) -> str:
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


def _prepare_partial(partial: str, sweep: Sweep) -> set[int]:
    """Create or reuse the checkpoint directory; return the finished point indices.

    Every checkpoint is checked against ``sweep`` (its fields, their dtype and shape);
    a bad one is discarded with a :class:`RuntimeWarning` naming the file and computed
    again.
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
            _read_point(partial, index, sweep)
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
    return done


def _atomic_write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _write_point(partial: str, index: int, result: dict[str, np.ndarray]) -> None:
    final = _point_path(partial, index)
    if os.path.exists(final):  # never write a point twice
        return
    fd, tmp = tempfile.mkstemp(prefix=f".point-{index:07d}-", suffix=".npz", dir=partial)
    with os.fdopen(fd, "wb") as handle:
        arrays: dict[str, Any] = {k: np.asarray(result[k], dtype=np.float64)
                                  for k in _POINT_KEYS}
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def point_shapes(sweep: Sweep, index: int) -> dict[str, tuple[int, ...]]:
    """Shape of every checkpoint field of grid point ``index`` of ``sweep``."""
    p = sweep.point(index)
    kept = (sweep.map_indices(p["rows"]).size, sweep.map_indices(p["cols"]).size)
    shapes: dict[str, tuple[int, ...]] = {k: (sweep.samples,)
                                          for k in ("nf", "nf_model", "nf_first_order")}
    shapes["nf_columns"] = (p["cols"],)
    for key in ("cell_loss", "cell_loss_std", "current_attenuation", "model_loss"):
        shapes[key] = kept
    return shapes


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


def _read_point(partial: str, index: int, sweep: Sweep) -> dict[str, np.ndarray]:
    """Read one checkpoint; TableError naming the file if it is unreadable, incomplete or
    does not fit grid point ``index`` of ``sweep`` (a field's dtype or shape).

    The shapes and dtypes are read from the headers first, so a file declaring a huge
    array is refused before anything is allocated for it.
    """
    path = _point_path(partial, index)
    expected = point_shapes(sweep, index)
    problem = None
    try:
        with zipfile.ZipFile(path) as archive:
            for key in _POINT_KEYS:
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
                out = {k: np.array(data[k]) for k in _POINT_KEYS}
    except Exception as exc:  # ValueError, OSError, KeyError, zipfile.BadZipFile, ...
        raise TableError(f"corrupt checkpoint {path} ({type(exc).__name__}: "
                         f"{short_repr(str(exc))})") from None
    if problem is not None:
        raise TableError(f"corrupt checkpoint {path}: {problem}")
    for key, value in out.items():
        if np.isinf(value).any():
            raise TableError(f"corrupt checkpoint {path}: {key!r} holds infinite values")
    return out


def _check_workers(workers: Any) -> int | None:
    if workers is None:
        return None
    return check_int("workers", workers, 0, error=TableError)


def _check_output(output: Any) -> str:
    """The table path as a string; TableError when it cannot be written there."""
    try:
        output = os.fspath(output)
    except TypeError:
        raise TableError(f"output must be a file path, got {short_repr(output)}") from None
    if not isinstance(output, str) or not output:
        raise TableError(f"output must be a non-empty file path, got {short_repr(output)}")
    if os.path.isdir(output):
        raise TableError(f"output {output} is a directory; give the path of the .nc file "
                         "to write")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise TableError(f"cannot write {output}: the folder {folder} does not exist")
    return output


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="point", desc="calibrate", smoothing=0.1)


def calibrate(
    sweep: Sweep | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    ngspice_check: bool = True,
    on_point: Callable[[int, int], None] | None = None,
    keep_partial: bool = False,
) -> CalibrationResult:
    """Compute a calibration table: exact solves at every grid point of ``sweep``.

    Parameters
    ----------
    sweep : Sweep or path
        The sweep, or a YAML/JSON file describing it.
    output : path
        NetCDF file to write (``.nc``). Checkpoints go to ``output + ".partial"``; a rerun
        with the same output and sweep computes only the missing points.
    workers : int, optional
        Number of single-threaded worker processes of a local Dask cluster. ``0`` runs
        serially in this process without Dask. Default: a local cluster with one worker
        per core, or serial when the sweep has fewer than :data:`SERIAL_BELOW` samples to
        compute. Ignored when ``scheduler`` is given.
    scheduler : str or distributed.Client, optional
        Address of a running Dask scheduler (``tcp://host:8786``), or a connected
        ``distributed.Client``, to use instead (default: the ``DASK_SCHEDULER_ADDRESS``
        environment variable when ``workers`` is not given). Its workers need
        xbar-circuit installed. An address that does not answer within
        :data:`CONNECT_TIMEOUT` seconds raises :class:`TableError`.
    progress : bool
        Show a progress bar (points done and time left).
    ngspice_check : bool
        Solve the smallest grid point's first sample with ngspice too, when available, and
        record the agreement in the table's attributes.
    on_point : callable, optional
        ``on_point(done, total)`` is called after each checkpoint is written.
    keep_partial : bool
        Keep the checkpoint directory after the table is written.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    SweepError
        For an invalid sweep.
    TableError
        If ``workers`` is not an integer >= 0, or the checkpoint directory belongs to a
        different sweep.
    """
    workers = _check_workers(workers)
    if scheduler is None and workers is None:
        scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler is not None and not (isinstance(scheduler, str) or _is_client(scheduler)):
        raise TableError(f"scheduler must be an address string such as tcp://host:8786 or a "
                         f"distributed.Client, got {short_repr(scheduler)}")
    if not isinstance(sweep, Sweep):
        if not isinstance(sweep, (str, os.PathLike)):
            raise SweepError(f"sweep must be a Sweep or the path of a sweep file, got "
                             f"{short_repr(sweep)}")
        sweep = Sweep.from_file(sweep)
    output = _check_output(output)
    local = 1 if scheduler is not None or workers == 0 else (workers or os.cpu_count() or 1)
    check_memory(sweep_bytes(sweep, local), f"calibrating the {sweep.n_points}-point sweep "
                 f"{sweep.name!r} ({sweep.samples} samples per point, arrays up to "
                 f"{max(sweep.grid['rows'])}x{max(sweep.grid['cols'])})")
    partial = _partial_dir(output)
    done = _prepare_partial(partial, sweep)
    todo = [i for i in range(sweep.n_points) if i not in done]
    sweep_json = sweep.to_json()
    bar = _progress(sweep.n_points, len(done), progress)
    count = len(done)
    start = time.perf_counter()
    n_workers = 0

    def finished(index: int, result: dict[str, np.ndarray]) -> None:
        nonlocal count
        _write_point(partial, index, result)
        count += 1
        if bar is not None:
            bar.update(1)
        if on_point is not None:
            on_point(count, sweep.n_points)

    # A local cluster costs seconds to start: a small sweep is faster in this process.
    serial = workers == 0 or (workers is None and scheduler is None
                              and len(todo) * sweep.samples < SERIAL_BELOW)
    try:
        if todo and scheduler is None and serial:
            for index in todo:
                finished(index, compute_point(sweep_json, index))
        elif todo:
            n_workers = _run_dask(sweep, sweep_json, todo, workers, scheduler, finished)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    dataset = assemble(sweep, partial, ngspice_check=ngspice_check)
    write_table(dataset, output)
    if not keep_partial:
        shutil.rmtree(partial, ignore_errors=True)
    return CalibrationResult(output, sweep.n_points, len(todo), seconds, n_workers)


def compute_points(sweep_json: str, indices: list[int]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Compute several grid points in one task (fewer scheduler round trips)."""
    return [(index, compute_point(sweep_json, index)) for index in indices]


CONNECT_TIMEOUT = 5
"""Seconds to wait for a Dask scheduler to answer before giving up."""

SERIAL_BELOW = 64
"""Default ``workers``: sweeps with fewer samples to compute run in this process."""


def _is_client(value: Any) -> bool:
    """Whether ``value`` is a connected ``distributed.Client`` (duck-typed)."""
    return all(callable(getattr(value, name, None)) for name in ("submit", "scheduler_info"))


def _run_dask(sweep: Sweep, sweep_json: str, todo: list[int], workers: int | None,
              scheduler: Any, finished: Callable[[int, dict[str, np.ndarray]], None]
              ) -> int:
    from .._optional import import_optional

    dask = import_optional("dask", "calibrate() with Dask workers")
    distributed = import_optional("distributed", "calibrate() with Dask workers")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    as_completed = distributed.as_completed

    cluster = None
    own_client = True
    if _is_client(scheduler):
        client, own_client = scheduler, False
    elif scheduler is None:
        n = workers if workers is not None else (os.cpu_count() or 1)
        # The statistical profiler samples worker threads every 10 ms; it slowed these
        # short numeric tasks by up to 2x on 2 cores, so local workers run without it.
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError) as exc:
            raise TableError(f"cannot reach the Dask scheduler at {scheduler} within "
                             f"{CONNECT_TIMEOUT} s ({type(exc).__name__}); is it running? "
                             "(--serial computes without Dask)") from None
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        # Chunks of a few points amortize the per-task overhead while leaving enough
        # tasks (>= 8 per worker) to balance the load; a lost worker costs its chunk.
        size = max(1, min(16, len(todo) // (8 * max(n_workers, 1))))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        futures = [client.submit(compute_points, sweep_json, chunk, pure=False, retries=2,
                                 key=f"xbar-points-{sweep.digest[:16]}-{chunk[0]}-{len(chunk)}")
                   for chunk in chunks]
        for future in as_completed(futures):
            for index, result in future.result():
                finished(index, result)
            future.release()
        return n_workers
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------ assembly
def assemble(sweep: Sweep, partial: str, *, ngspice_check: bool = True) -> Any:
    """Build the labelled table (an :class:`xarray.Dataset`) from the checkpoints.

    Raises
    ------
    TableError
        If a grid point has no checkpoint.
    """
    from .._optional import import_optional

    xr = import_optional("xarray", "a lookup table")
    import_optional("h5netcdf", "writing a lookup table to NetCDF")

    shape = sweep.shape
    n_max_r, n_max_c = max(sweep.grid["rows"]), max(sweep.grid["cols"])
    k_r = min(n_max_r, sweep.map_max)
    k_c = min(n_max_c, sweep.map_max)
    s = sweep.samples
    nan = np.nan
    arrays = {
        "nf": np.full((*shape, s), nan), "nf_model": np.full((*shape, s), nan),
        "nf_first_order": np.full((*shape, s), nan),
        "nf_columns": np.full((*shape, n_max_c), nan),
        "cell_loss": np.full((*shape, k_r, k_c), nan),
        "cell_loss_std": np.full((*shape, k_r, k_c), nan),
        "current_attenuation": np.full((*shape, k_r, k_c), nan),
        "model_loss": np.full((*shape, k_r, k_c), nan),
    }
    missing = [i for i in range(sweep.n_points) if not os.path.exists(_point_path(partial, i))]
    if missing:
        raise TableError(f"{len(missing)} grid point(s) have no checkpoint in {partial} "
                         f"(first: {missing[:5]})")
    for index in range(sweep.n_points):
        p = sweep.point(index)
        data = _read_point(partial, index, sweep)
        at = p["index"]
        for key in ("nf", "nf_model", "nf_first_order"):
            arrays[key][at] = data[key]
        arrays["nf_columns"][(*at, slice(0, p["cols"]))] = data["nf_columns"]
        mr, mc = data["cell_loss"].shape
        for key in ("cell_loss", "cell_loss_std", "current_attenuation", "model_loss"):
            arrays[key][(*at, slice(0, mr), slice(0, mc))] = data[key]
    bad = np.argwhere(~np.isfinite(arrays["nf"]).all(axis=-1).reshape(-1))
    if bad.size:
        first = sweep.point(int(bad[0, 0]))
        first.pop("index")
        raise TableError(f"{bad.size} grid point(s) gave an undefined (non-finite) NF, e.g. "
                         f"{first}: no column has a nonzero ideal current; change the sweep")
    map_row_index = np.full((len(sweep.grid["rows"]), k_r), -1, dtype=np.int64)
    for a, m in enumerate(sweep.grid["rows"]):
        idx = sweep.map_indices(m)
        map_row_index[a, : idx.size] = idx
    map_col_index = np.full((len(sweep.grid["cols"]), k_c), -1, dtype=np.int64)
    for a, n in enumerate(sweep.grid["cols"]):
        idx = sweep.map_indices(n)
        map_col_index[a, : idx.size] = idx
    nf = arrays["nf"]
    dims = list(DIMS)
    units = {"rows": "cells", "cols": "cells", "r_row": "ohm", "r_col": "ohm",
             "r_driver": "ohm", "r_sense": "ohm", "g_on": "S", "g_off": "S", "density": "1"}
    coords: dict[str, Any] = {
        k: xr.Variable(k, np.asarray(sweep.grid[k], dtype=np.int64 if k in ("rows", "cols")
                                     else np.float64), {"units": units[k]})
        for k in DIMS
    }
    coords["sample"] = np.arange(s, dtype=np.int64)
    coords["col"] = np.arange(n_max_c, dtype=np.int64)
    coords["map_row_index"] = (("rows", "map_row"), map_row_index,
                               {"description": "cell row index of each map row (-1: none)"})
    coords["map_col_index"] = (("cols", "map_col"), map_col_index,
                               {"description": "cell column index of each map column (-1: none)"})
    mapdims = [*dims, "map_row", "map_col"]

    def var(d: list[str], a: np.ndarray, text: str) -> tuple[list[str], np.ndarray, dict]:
        return (d, a, {"description": text, "units": "1"})

    data_vars = {
        "nf_samples": var([*dims, "sample"], nf, "array NF (mean column NF, docs/convention.md "
                          "§2) of each random sample, exact solve"),
        "nf_mean": var(dims, nf.mean(axis=-1), "mean over samples of the array NF"),
        "nf_std": var(dims, nf.std(axis=-1, ddof=1) if s > 1 else np.zeros(shape),
                      "sample standard deviation of the array NF (0 for one sample)"),
        "nf_min": var(dims, nf.min(axis=-1), "smallest array NF over samples"),
        "nf_max": var(dims, nf.max(axis=-1), "largest array NF over samples"),
        "nf_model_samples": var([*dims, "sample"], arrays["nf_model"],
                                "closed-form (cell-wise Pade) NF of the same samples"),
        "nf_first_order_samples": var([*dims, "sample"], arrays["nf_first_order"],
                                      "first-order (linear in r) NF of the same samples"),
        "nf_columns": var([*dims, "col"], arrays["nf_columns"],
                          "column NF versus column position, mean over samples (NaN past N)"),
        "cell_loss": var(mapdims, arrays["cell_loss"], "per-cell loss 1 - V_cell/V_in, mean "
                         "over samples, at cells map_row_index x map_col_index"),
        "cell_loss_std": var(mapdims, arrays["cell_loss_std"],
                             "population standard deviation of the per-cell loss over samples"),
        "current_attenuation": var(mapdims, arrays["current_attenuation"],
                                   "per-cell current attenuation 1 - I_cell/(G V_in), mean "
                                   "over samples (equals cell_loss for linear devices)"),
        "model_loss": var(mapdims, arrays["model_loss"],
                          "closed-form (cell-wise Pade) per-cell loss, mean over samples"),
    }
    ds = xr.Dataset(data_vars=data_vars, coords=coords)
    ds.attrs.update(provenance(sweep, ngspice_check=ngspice_check))
    return ds


def provenance(sweep: Sweep, *, ngspice_check: bool = True) -> dict[str, Any]:
    """Attributes recording how a table was made (all plain strings and numbers)."""
    from ..backends.nodal import DEFAULT_RTOL

    solver = {"nodal": f"compiled line-preconditioned CG, relative residual <= {DEFAULT_RTOL:g}"
                       " (column currents within ~1e-12 of a direct solve)",
              "reference": "SuperLU direct solve with iterative refinement (machine precision)",
              "ngspice": "ngspice .op defaults (reltol 1e-3, abstol 1e-12 A)"}
    check = _ngspice_check(sweep) if ngspice_check else {"status": "skipped (disabled)"}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "package": "xbar-circuit",
        "package_version": __version__,
        "backend": sweep.backend,
        "solver_tolerance": solver.get(sweep.backend, "unknown"),
        "metric": "nf = mean over columns with I_ideal > 0 of (I_ideal - I)/I_ideal",
        "sweep": sweep.to_json(),
        "sweep_digest": sweep.digest,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": f"{platform.node()} ({os.cpu_count()} cores, {platform.platform()})",
        "ngspice_check": json.dumps(_json_safe(check), sort_keys=True, allow_nan=False),
    }


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _ngspice_check(sweep: Sweep) -> dict[str, Any]:
    """Cross-check the smallest grid point's first sample against ngspice."""
    from ..api import solve
    from ..spec import Crossbar
    from .physics import point_inputs, point_rng

    p = sweep.point(0)
    m, n = p["rows"], p["cols"]
    if m * n > 64 * 64:
        return {"status": "skipped (smallest point larger than 64x64)"}
    if sweep.backend == "ngspice":
        return {"status": "skipped (the table itself was solved by ngspice)"}
    rng = point_rng(sweep.seed, 0, 0, 0)
    uniform = rng.random((m, n))
    v = point_inputs(sweep.inputs, m, rng)
    g = np.where(uniform < p["density"], p["g_on"], p["g_off"])
    xbar = Crossbar(g, r_row=p["r_row"], r_col=p["r_col"], r_driver=p["r_driver"],
                    r_sense=p["r_sense"])
    try:
        spice = solve(xbar, v, backend="ngspice")
    except Exception as exc:  # ngspice missing or backend not importable
        return {"status": f"ngspice not available: {type(exc).__name__}: {exc}"[:300]}
    ours = solve(xbar, v, backend=sweep.backend)
    diff = float(np.max(np.abs(spice.column_currents - ours.column_currents))
                 / np.max(np.abs(ours.column_currents)))
    return {"status": "done", "point": 0, "sample": 0, "shape": [m, n],
            "max_rel_current_diff": diff, "nf_backend": ours.nf, "nf_ngspice": spice.nf}


def write_table(dataset: Any, output: str) -> None:
    """Write ``dataset`` to NetCDF (h5netcdf engine) atomically."""
    directory = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".table-", suffix=".nc", dir=directory)
    except OSError as exc:
        raise TableError(f"cannot write {output}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        dataset.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
