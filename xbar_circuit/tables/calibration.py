"""Compute a lookup table: run a sweep's exact solves, checkpoint each point, write the file.

:func:`calibrate` is the entry point; it composes the modules that do the work:

* :mod:`.checkpoint`: the ``TABLE.partial/`` directory, one file per finished point, so
  an interrupted run resumes where it stopped;
* :mod:`.scheduler`: serial or Dask (a local cluster, a running scheduler, or
  ``DASK_SCHEDULER_ADDRESS``), and the loop that hands finished points back;
* :mod:`.dataset`: the checkpoints assembled into an :class:`xarray.Dataset` and written
  to NetCDF;
* :mod:`.schema`: the table's schema tag, per-point fields and attributes.

:func:`assemble` and :func:`provenance` add the table's attributes, including the
cross-check of the smallest grid point against ngspice.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .._memory import check_memory, sweep_bytes
from .._validate import check_int, short_repr
from ._errors import SweepError, TableError
from .checkpoint import partial_dir, prepare_partial
from .checkpoint import point_path as _point_path  # noqa: F401
from .checkpoint import read_point as _read_point  # noqa: F401
from .checkpoint import write_point as _write_point
from .dataset import build_dataset
from .dataset import write_table as write_table
from .physics import compute_point
from .scheduler import CONNECT_TIMEOUT as CONNECT_TIMEOUT
from .scheduler import SERIAL_BELOW as SERIAL_BELOW
from .scheduler import (
    choose_scheduler,
    compute_on_dask,
    local_processes,
    runs_serially,
)
from .scheduler import compute_points as compute_points
from .schema import SCHEMA, SCHEMA_VERSION, table_attributes
from .schema import point_shapes as point_shapes
from .sweep import Sweep

__all__ = ["SCHEMA", "SCHEMA_VERSION", "CalibrationResult", "assemble", "calibrate"]

logger = logging.getLogger(__name__)


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
    scheduler = choose_scheduler(workers, scheduler)
    if not isinstance(sweep, Sweep):
        if not isinstance(sweep, (str, os.PathLike)):
            raise SweepError(f"sweep must be a Sweep or the path of a sweep file, got "
                             f"{short_repr(sweep)}")
        sweep = Sweep.from_file(sweep)
    output = _check_output(output)
    local = local_processes(workers, scheduler)
    check_memory(sweep_bytes(sweep, local), f"calibrating the {sweep.n_points}-point sweep "
                 f"{sweep.name!r} ({sweep.samples} samples per point, arrays up to "
                 f"{max(sweep.grid['rows'])}x{max(sweep.grid['cols'])})")
    partial = partial_dir(output)
    done = prepare_partial(partial, sweep)
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

    serial = runs_serially(workers, scheduler, len(todo) * sweep.samples)
    logger.info("calibrating %r: %d grid points, %d to compute %s", sweep.name,
                sweep.n_points, len(todo), "in this process" if serial else "on Dask")
    try:
        if todo and serial:
            for index in todo:
                finished(index, compute_point(sweep_json, index))
        elif todo:
            n_workers = compute_on_dask(sweep, sweep_json, todo, workers, scheduler, finished)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    logger.info("computed %d grid points in %.1f s", len(todo), seconds)
    dataset = assemble(sweep, partial, ngspice_check=ngspice_check)
    write_table(dataset, output)
    if not keep_partial:
        shutil.rmtree(partial, ignore_errors=True)
    return CalibrationResult(output, sweep.n_points, len(todo), seconds, n_workers)


def assemble(sweep: Sweep, partial: str, *, ngspice_check: bool = True) -> Any:
    """Build the labelled table (an :class:`xarray.Dataset`) from the checkpoints.

    Parameters
    ----------
    sweep : Sweep
        The sweep the checkpoints belong to.
    partial : str
        Checkpoint directory.
    ngspice_check : bool
        Cross-check the smallest grid point against ngspice for the attributes.

    Returns
    -------
    xarray.Dataset
        Variables and coordinates from :func:`~.dataset.build_dataset`, attributes from
        :func:`provenance`.

    Raises
    ------
    TableError
        If a grid point has no checkpoint.
    """
    ds = build_dataset(sweep, partial)
    ds.attrs.update(provenance(sweep, ngspice_check=ngspice_check))
    return ds


def provenance(sweep: Sweep, *, ngspice_check: bool = True) -> dict[str, Any]:
    """Attributes recording how a table was made (all plain strings and numbers).

    Parameters
    ----------
    sweep : Sweep
        The sweep of the table.
    ngspice_check : bool
        Run the ngspice cross-check (else it is recorded as skipped).

    Returns
    -------
    dict
        :func:`~.schema.table_attributes` with the outcome of the check.
    """
    check = _ngspice_check(sweep) if ngspice_check else {"status": "skipped (disabled)"}
    return table_attributes(sweep, check)


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


