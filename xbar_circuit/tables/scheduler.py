"""Where a calibration's grid points are computed: in this process or on Dask.

:func:`choose_scheduler` reads the ``scheduler`` argument (falling back to the
``DASK_SCHEDULER_ADDRESS`` environment variable), :func:`runs_serially` decides when a
local cluster is not worth starting (fewer than :data:`SERIAL_BELOW` samples to
compute), and :func:`compute_on_dask` sends the points in chunks through the shared
Dask loop (:func:`xbar_circuit._dask.run_on_dask`), handing each finished point back to
the caller, which writes its checkpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .._dask import CONNECT_TIMEOUT, is_client, run_on_dask
from .._validate import short_repr
from ._errors import TableError
from .physics import compute_point
from .sweep import Sweep

__all__ = ["CONNECT_TIMEOUT", "SERIAL_BELOW", "choose_scheduler", "compute_on_dask",
           "compute_points", "local_processes", "runs_serially"]

logger = logging.getLogger(__name__)

SERIAL_BELOW = 64
"""Default ``workers``: sweeps with fewer samples to compute run in this process."""


def choose_scheduler(workers: int | None, scheduler: Any) -> Any:
    """The Dask scheduler a calibration uses, or None for none given.

    Parameters
    ----------
    workers : int or None
        The checked ``workers`` argument of :func:`~xbar_circuit.tables.calibrate`.
    scheduler : str, distributed.Client or None
        Its ``scheduler`` argument.

    Returns
    -------
    str, distributed.Client or None
        ``scheduler``; when both it and ``workers`` are None, the
        ``DASK_SCHEDULER_ADDRESS`` environment variable (None when unset or empty).

    Raises
    ------
    TableError
        If ``scheduler`` is neither an address string nor a connected client.
    """
    if scheduler is None and workers is None:
        scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        if scheduler is not None:
            logger.info("using the Dask scheduler of DASK_SCHEDULER_ADDRESS: %s", scheduler)
    if scheduler is not None and not (isinstance(scheduler, str) or is_client(scheduler)):
        raise TableError(f"scheduler must be an address string such as tcp://host:8786 or a "
                         f"distributed.Client, got {short_repr(scheduler)}")
    return scheduler


def local_processes(workers: int | None, scheduler: Any) -> int:
    """How many processes of this machine compute points at once.

    Parameters
    ----------
    workers : int or None
        Checked ``workers`` argument.
    scheduler : str, distributed.Client or None
        From :func:`choose_scheduler`.

    Returns
    -------
    int
        1 with a scheduler (its workers run elsewhere) or ``workers=0``; else
        ``workers``, or the number of cores.
    """
    return 1 if scheduler is not None or workers == 0 else (workers or os.cpu_count() or 1)


def runs_serially(workers: int | None, scheduler: Any, samples_to_compute: int) -> bool:
    """Whether the points are computed in this process, without Dask.

    Parameters
    ----------
    workers : int or None
        Checked ``workers`` argument.
    scheduler : str, distributed.Client or None
        From :func:`choose_scheduler`.
    samples_to_compute : int
        Points still to compute times samples per point.

    Returns
    -------
    bool
        True without a scheduler when ``workers=0``, or when ``workers`` is None and
        there are fewer than :data:`SERIAL_BELOW` samples to compute (a local cluster
        costs seconds to start).
    """
    return scheduler is None and (
        workers == 0 or (workers is None and samples_to_compute < SERIAL_BELOW))


def compute_points(sweep_json: str, indices: list[int]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Compute several grid points in one task (fewer scheduler round trips).

    Parameters
    ----------
    sweep_json : str
        The sweep as JSON (:meth:`Sweep.to_json`).
    indices : list of int
        Flat indices of the grid points.

    Returns
    -------
    list of (int, dict of str to ndarray)
        Each index with its fields (:func:`~.physics.compute_point`).
    """
    return [(index, compute_point(sweep_json, index)) for index in indices]


def compute_on_dask(sweep: Sweep, sweep_json: str, todo: list[int], workers: int | None,
                    scheduler: Any, finished: Callable[[int, dict[str, np.ndarray]], None]
                    ) -> int:
    """Compute grid points ``todo`` on Dask; ``finished(index, fields)`` for each point.

    Parameters
    ----------
    sweep : Sweep
        The sweep (its digest names the tasks).
    sweep_json : str
        The same sweep as JSON, sent to the workers.
    todo : list of int
        Flat indices of the points to compute.
    workers : int or None
        Processes of a local cluster (None: one per core) when ``scheduler`` is None.
    scheduler : str, distributed.Client or None
        A running scheduler's address or a connected client.
    finished : callable
        Called in this process as each point arrives.

    Returns
    -------
    int
        Dask workers used.

    Raises
    ------
    TableError
        If the scheduler cannot be reached within :data:`CONNECT_TIMEOUT` seconds.
    """
    def submit(client: Any, n_workers: int) -> list[Any]:
        # Chunks of a few points amortize the per-task overhead while leaving enough
        # tasks (>= 8 per worker) to balance the load; a lost worker costs its chunk.
        size = max(1, min(16, len(todo) // (8 * max(n_workers, 1))))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        return [client.submit(compute_points, sweep_json, chunk, pure=False, retries=2,
                              key=f"xbar-points-{sweep.digest[:16]}-{chunk[0]}-{len(chunk)}")
                for chunk in chunks]

    def on_result(_position: int, results: list[tuple[int, dict[str, np.ndarray]]]) -> None:
        for index, result in results:
            finished(index, result)

    return run_on_dask(submit, on_result, workers=workers, scheduler=scheduler,
                       purpose="calibrate() with Dask workers", error=TableError)
