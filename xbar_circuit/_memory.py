"""Memory guard: estimate what a request needs and refuse it before allocating.

A request far beyond the machine (a 200000 x 200000 array, a batch of millions of
vectors, a sweep of huge tables) would otherwise end in a ``MemoryError`` traceback
half-way through, or in the kernel's out-of-memory killer ending the process. The
estimates below are deliberately *lower* bounds of what each path allocates
(measured on the solvers; see each function), so a request that is refused could
never have succeeded, while one that passes may still need somewhat more.

The available memory is ``MemAvailable`` (through :mod:`psutil` when importable, else
``/proc/meminfo``), lowered to the cgroup (container) limit when there is one and to
the environment variable ``XBAR_MEMORY_LIMIT`` when it is set (bytes, or a number with
a ``K``/``M``/``G``/``T`` suffix). When none of these can be read, nothing is refused.
Requests below 64 MiB are not checked unless ``XBAR_MEMORY_LIMIT`` is set: reading
the system's figures would cost more than solving a small array.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import InputError, MemoryLimitError

__all__ = [
    "available_bytes",
    "check_memory",
    "crossbar_bytes",
    "format_bytes",
    "solve_bytes",
    "sweep_bytes",
]

_FLOAT = 8
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

# Bytes per cell measured with ``ru_maxrss`` on 128x128 and 256x256 single solves:
# the reference backend's sparse LU needs ~5 kB per cell, the compiled nodal solver
# ~85 B per cell and thread. The constants are rounded down (lower bounds).
_SMALL = 64 * 2**20
"""Requests below this many bytes are not checked (unless XBAR_MEMORY_LIMIT is set)."""
_REFERENCE_PER_CELL = 2000
_NODAL_PER_CELL = 64
_NGSPICE_PER_CELL = 500


def format_bytes(count: float) -> str:
    """Human-readable size, e.g. ``'1.5 GiB'``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def _env_limit() -> int | None:
    raw = os.environ.get("XBAR_MEMORY_LIMIT", "").strip()
    if not raw:
        return None
    number, suffix = raw, ""
    if raw[-1].upper() in "KMGT":
        number, suffix = raw[:-1], raw[-1].upper()
    try:
        value = float(number)
    except ValueError:
        raise InputError(f"XBAR_MEMORY_LIMIT must be bytes or a number with K, M, G or T, "
                         f"got {raw!r}") from None
    if not (value >= 0 and value < 2**64):
        raise InputError(f"XBAR_MEMORY_LIMIT must be a non-negative size, got {raw!r}")
    return int(value * _SUFFIXES[suffix])


def _meminfo_available() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unable to read on this platform
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit, if the process runs under one."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as handle:
            limit = handle.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as handle:
            current = int(handle.read().strip())
        return max(int(limit) - current, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """Bytes of memory this process can still allocate, or None when unknown."""
    candidates = [v for v in (_meminfo_available(), _cgroup_available(), _env_limit())
                  if v is not None]
    return min(candidates) if candidates else None


def check_memory(needed: float, what: str) -> None:
    """Raise :class:`MemoryLimitError` if ``needed`` bytes exceed the available memory.

    Parameters
    ----------
    needed : float
        Estimated bytes the request allocates.
    what : str
        The request, for the message (``"solve of a 4096x4096 crossbar, batch 1000"``).

    Raises
    ------
    MemoryLimitError
        Naming the request, the bytes it needs and the bytes available.
    """
    if needed < _SMALL and not os.environ.get("XBAR_MEMORY_LIMIT"):
        return  # reading the system's memory costs more than a small solve
    available = available_bytes()
    if available is None or needed <= available:
        return
    raise MemoryLimitError(
        f"{what} needs at least {format_bytes(needed)} of memory but only "
        f"{format_bytes(available)} is available; use a smaller size or batch "
        "(or raise XBAR_MEMORY_LIMIT if it is set too low)",
        needed=int(min(needed, 2**63)), available=int(available))


def crossbar_bytes(m: int, n: int, copies: int = 2) -> int:
    """Bytes to hold ``copies`` float64 (M, N) conductance arrays."""
    return copies * int(m) * int(n) * _FLOAT


def solve_bytes(m: int, n: int, batch: int, backend: str, *, effective: bool = False,
                threads: int = 1) -> int:
    """Lower bound of the bytes :func:`xbar_circuit.solve` allocates for one request.

    Every backend returns row and column node voltages of shape (B, M, N) and the
    solution derives cell voltages of that shape again (3·B·M·N doubles). On top:
    the reference backend's sparse LU factors (kilobytes per cell), the nodal
    solver's work vectors per thread, or with ``effective`` the (M, M, N) unit
    responses (twice, rows and columns), and for ngspice the deck and raw file.

    Parameters
    ----------
    m, n : int
        Array size.
    batch : int
        Number of input vectors B.
    backend : str
        ``"nodal"``, ``"reference"`` or ``"ngspice"`` (others count as nodal).
    effective : bool
        Whether the unit-response (``use_effective=True``) path is forced.
    threads : int
        Solver threads (nodal).

    Returns
    -------
    int
    """
    m, n, batch = int(m), int(n), int(batch)
    cells = m * n
    total = 3 * batch * cells * _FLOAT + crossbar_bytes(m, n, 1)
    if backend == "reference":
        total += _REFERENCE_PER_CELL * cells
    elif backend == "ngspice":
        total += _NGSPICE_PER_CELL * cells + batch * cells * _FLOAT
    else:
        total += _NODAL_PER_CELL * cells * max(int(threads), 1)
        if effective:
            total += 2 * m * cells * _FLOAT
    return total


def sweep_bytes(sweep: Any, workers: int = 1) -> int:
    """Lower bound of the bytes a calibration of ``sweep`` allocates in this process.

    The assembled table holds, per grid point, the samples' NF values, the column NF
    profile and four attenuation maps of at most ``map_max`` squared cells; it is
    built once and copied once when written. Each concurrently solved point (one
    per worker, all on this machine for a local cluster) needs one solve of the
    largest array.

    Parameters
    ----------
    sweep : Sweep
        The sweep.
    workers : int
        Points solved at the same time on this machine (>= 1).

    Returns
    -------
    int
    """
    points = sweep.n_points
    rows, cols = max(sweep.grid["rows"]), max(sweep.grid["cols"])
    k_r, k_c = min(rows, sweep.map_max), min(cols, sweep.map_max)
    per_point = 4 * sweep.samples + cols + 4 * k_r * k_c
    table = 2 * points * per_point * _FLOAT
    maps = 3 * sweep.samples * k_r * k_c * _FLOAT
    solve = solve_bytes(rows, cols, 1, sweep.backend) + maps
    return table + max(int(workers), 1) * solve
