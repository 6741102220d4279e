"""Cost model of ngspice runs: how long one ``.op`` run of an M x N crossbar takes.

The estimate interpolates measured wall times (:data:`COST_TABLE` without KLU,
:data:`COST_TABLE_KLU` with it) and extrapolates them past the largest measured array;
:func:`warn_if_costly` turns a large estimate into a :class:`NgspiceCostWarning` before
anything runs. Nothing here starts ngspice.
"""

from __future__ import annotations

import logging
import math
import warnings

__all__ = [
    "COST_TABLE",
    "COST_TABLE_KLU",
    "COST_WARNING_CELLS",
    "COST_WARNING_CELLS_KLU",
    "NgspiceCostWarning",
    "estimate_seconds",
    "warn_if_costly",
]

logger = logging.getLogger(__name__)


class NgspiceCostWarning(UserWarning):
    """An ngspice run is expected to take long (Debian's ngspice has no KLU solver)."""


COST_TABLE: tuple[tuple[int, float], ...] = (
    (32 * 32, 0.12),
    (48 * 48, 0.63),
    (64 * 64, 3.2),
    (80 * 80, 10.7),
    (96 * 96, 30.0),
    (128 * 128, 147.0),
)
"""Measured ``.op`` wall times (seconds, medians) of one linear crossbar deck versus cell
count M·N: ngspice 39.3 (Debian 12, no KLU), 2 cores, 2026-11-23; see docs/ngspice.md."""

COST_WARNING_CELLS = 64 * 64
"""Runs above this many cells (M·N > 4096) issue :class:`NgspiceCostWarning` when
ngspice has no KLU."""

COST_TABLE_KLU: tuple[tuple[int, float], ...] = (
    (32 * 32, 0.09),
    (64 * 64, 0.33),
    (128 * 128, 1.8),
    (256 * 256, 35.0),
    (512 * 512, 334.0),
)
"""Measured ``.op`` wall times (seconds) of one linear crossbar deck with
``.options klu pivrel=0.5``: ngspice 46 (Debian bookworm-backports), 2 cores shared with
other jobs (load average 3-7), 2026-12-02; see docs/ngspice.md and
docs/benchmarks-spice.md. An idle machine takes less."""

COST_WARNING_CELLS_KLU = 256 * 256
"""With KLU, runs above this many cells (M·N > 65536) issue :class:`NgspiceCostWarning`."""


def estimate_seconds(n_rows: int, n_cols: int, klu: bool = False) -> float:
    """Estimate the wall time of one ngspice ``.op`` run of an M x N crossbar.

    Log-log interpolation in :data:`COST_TABLE` (or :data:`COST_TABLE_KLU`),
    extrapolated with the slope of the last two entries above the table (without KLU
    time ∝ (M·N)^2.8 above 128x128) and with time ∝ M·N below it.

    Parameters
    ----------
    n_rows, n_cols : int
        Array size M x N.
    klu : bool
        Whether the deck runs with ngspice's KLU solver.

    Returns
    -------
    float
        Estimated seconds for one input vector on this machine kind (2 cores): Debian
        ngspice 39.3 without KLU, or ngspice 46 with KLU.

    Examples
    --------
    >>> round(estimate_seconds(64, 64), 1)
    3.2
    """
    table = COST_TABLE_KLU if klu else COST_TABLE
    cells = float(n_rows) * float(n_cols)
    xs = [math.log(c) for c, _ in table]
    ys = [math.log(t) for _, t in table]
    x = math.log(max(cells, 1.0))
    if x <= xs[0]:
        return table[0][1] * cells / table[0][0]
    for k in range(1, len(xs)):
        if x <= xs[k] or k == len(xs) - 1:
            slope = (ys[k] - ys[k - 1]) / (xs[k] - xs[k - 1])
            return math.exp(ys[k - 1] + slope * (x - xs[k - 1]))
    raise AssertionError("unreachable")  # pragma: no cover


def warn_if_costly(n_rows: int, n_cols: int, n_runs: int = 1, stacklevel: int = 3,
                   klu: bool = False) -> float:
    """Warn with :class:`NgspiceCostWarning` when M·N exceeds :data:`COST_WARNING_CELLS`
    (:data:`COST_WARNING_CELLS_KLU` with KLU).

    Parameters
    ----------
    n_rows, n_cols : int
        Array size M x N.
    n_runs : int
        Number of ngspice runs planned (one per input vector).
    stacklevel : int
        Passed to :func:`warnings.warn`.
    klu : bool
        Whether the runs use ngspice's KLU solver.

    Returns
    -------
    float
        The estimated total seconds (also when no warning is issued).
    """
    seconds = estimate_seconds(n_rows, n_cols, klu) * max(int(n_runs), 1)
    limit = COST_WARNING_CELLS_KLU if klu else COST_WARNING_CELLS
    logger.debug("ngspice on a %dx%d crossbar (%s): about %.3g s for %s run(s)", n_rows,
                 n_cols, "KLU" if klu else "Sparse 1.3", seconds, n_runs)
    if n_rows * n_cols > limit:
        why = ("even with KLU, ngspice's time grows about as (M·N)^1.8 above 256x256" if klu
               else "this ngspice has no KLU sparse solver and its cost grows about as "
                    "(M·N)^2.7 above 64x64 (scripts/install_system_deps.sh installs "
                    "ngspice 46 with KLU from Debian's backports)")
        warnings.warn(
            f"ngspice on a {n_rows}x{n_cols} crossbar ({n_rows * n_cols} cells > "
            f"{limit}) is expected to take about {seconds:.0f} s for {n_runs} "
            f"run(s): {why}; use the 'nodal' or 'reference' backend for large arrays "
            f"or pass timeout=...",
            NgspiceCostWarning,
            stacklevel=stacklevel,
        )
    return seconds

