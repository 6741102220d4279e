"""Dask plumbing shared by :func:`~xbar_circuit.tables.calibrate` and
:func:`~xbar_circuit.mapping.search_layer`: one way to get a client, one result loop.

:func:`run_on_dask` connects to a running scheduler (or uses a connected client, or
starts a local cluster of single-threaded worker processes), submits the caller's tasks
and hands each result back as soon as its task finishes. The first task that fails
raises its error at once (fail-fast: the other tasks are cancelled with the client); a
scheduler that does not answer within :data:`CONNECT_TIMEOUT` seconds raises the
caller's error class with the same message in both places. Progress is the caller's:
``on_result`` runs once per finished task, in the order the tasks finish. Dask is
imported only inside the call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from ._optional import import_optional

__all__ = ["CONNECT_TIMEOUT", "is_client", "run_on_dask"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
"""Seconds to wait for a Dask scheduler to answer before giving up."""


def is_client(value: Any) -> bool:
    """Whether ``value`` is a connected ``distributed.Client`` (duck-typed).

    Parameters
    ----------
    value : object
        Anything.

    Returns
    -------
    bool
        True when ``value`` has callable ``submit`` and ``scheduler_info`` methods.
    """
    return all(callable(getattr(value, name, None)) for name in ("submit", "scheduler_info"))


def run_on_dask(
    submit: Callable[[Any, int], Sequence[Any]],
    on_result: Callable[[int, Any], None],
    *,
    workers: int | None,
    scheduler: Any,
    purpose: str,
    error: type[Exception],
) -> int:
    """Run tasks on Dask and hand every result to ``on_result`` as its task finishes.

    Parameters
    ----------
    submit : callable
        ``submit(client, n_workers)`` submits the tasks and returns their futures.
    on_result : callable
        ``on_result(position, result)`` for each finished task, ``position`` being the
        index of its future in what ``submit`` returned. An exception raised here, or
        by a task, ends the run (the remaining tasks are cancelled).
    workers : int or None
        Worker processes of a local cluster (None: one per core); used only when
        ``scheduler`` is None.
    scheduler : str, distributed.Client or None
        Address of a running scheduler (``tcp://host:8786``), a connected client (left
        open), or None for a local cluster started and closed here.
    purpose : str
        What needs Dask, for the missing-dependency error (e.g.
        ``"calibrate() with Dask workers"``).
    error : type of Exception
        Raised when the scheduler at ``scheduler`` does not answer.

    Returns
    -------
    int
        Number of workers the scheduler reported when the tasks were submitted.

    Raises
    ------
    MissingDependencyError
        If dask or distributed is not installed.
    error
        If the scheduler cannot be reached within :data:`CONNECT_TIMEOUT` seconds.
    """
    dask = import_optional("dask", purpose)
    distributed = import_optional("distributed", purpose)
    Client, LocalCluster = distributed.Client, distributed.LocalCluster

    cluster = None
    own_client = True
    if is_client(scheduler):
        client, own_client = scheduler, False
    elif scheduler is None:
        n = workers if workers is not None else (os.cpu_count() or 1)
        # The statistical profiler samples worker threads every 10 ms; it slowed short
        # numeric tasks by up to 2x on 2 cores, so local workers run without it.
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
        client = Client(cluster)
        logger.info("started a local Dask cluster of %d worker process(es)", n)
    else:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError) as exc:
            raise error(f"cannot reach the Dask scheduler at {scheduler} within "
                        f"{CONNECT_TIMEOUT} s ({type(exc).__name__}); is it running? "
                        "(--serial computes without Dask)") from None
        logger.info("connected to the Dask scheduler at %s", scheduler)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        futures = list(submit(client, n_workers))
        logger.info("%d task(s) submitted to %d Dask worker(s)", len(futures), n_workers)
        position = {id(future): k for k, future in enumerate(futures)}
        done = 0
        for future in distributed.as_completed(futures):
            on_result(position[id(future)], future.result())
            future.release()
            done += 1
            logger.debug("Dask task %d of %d finished", done, len(futures))
        return n_workers
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
