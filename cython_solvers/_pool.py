"""Thread-pool helpers shared by the kernel wrappers: defaults and batch chunking.

The compiled kernels release the GIL, so a batch split into contiguous chunks runs in
parallel on a :class:`concurrent.futures.ThreadPoolExecutor`, each chunk with its own
scratch memory; each vector's arithmetic is the same whatever the chunking.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["WorkerScratch", "chunks", "default_max_iter", "default_threads", "run_chunks"]


def default_threads() -> int:
    """Default number of worker threads: ``min(2, os.cpu_count())``."""
    return max(1, min(2, os.cpu_count() or 1))


def default_max_iter(n_rows: int, n_cols: int) -> int:
    """Default CG iteration cap for an M x N array: ``200 + 20 (M + N)``.

    Iterations grow like the square root of the lines' loss ``r·g·N²`` (see
    ``docs/solver.md``); a cap proportional to the size leaves room for lossy
    arrays while still stopping a stalled solve.
    """
    return 200 + 20 * (int(n_rows) + int(n_cols))


def chunks(batch: int, threads: int) -> list[tuple[int, int]]:
    """Split ``range(batch)`` into contiguous chunks for ``threads`` workers."""
    if threads <= 1 or batch <= 1:
        return [(0, batch)]
    n_chunks = min(batch, 4 * threads)
    bounds = np.linspace(0, batch, n_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def run_chunks(batch: int, threads: int, run: Callable[[int, int], None]) -> None:
    """Call ``run(lo, hi)`` for every chunk of ``range(batch)``, on ``threads`` workers."""
    parts = chunks(batch, threads)
    if len(parts) == 1:
        run(*parts[0])
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(run, lo, hi) for lo, hi in parts]:
            future.result()


class WorkerScratch:
    """Scratch arrays made once per worker thread and reused for every chunk it runs.

    :func:`run_chunks` cuts a batch into ``4 · threads`` chunks; scratch allocated per
    chunk would be fresh memory each time, and on a virtual machine the first touch of
    fresh pages costs several times the arithmetic of a small array (a batch of 64
    nonlinear 256x256 solves on two threads was 1.5x faster than on one with scratch
    per chunk).

    Parameters
    ----------
    make : callable
        Returns the scratch (any object) for one worker; called once per thread.
    """

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._local = threading.local()

    def get(self) -> Any:
        """This thread's scratch, made on first use."""
        value = getattr(self._local, "value", None)
        if value is None:
            value = self._local.value = self._make()
        return value
