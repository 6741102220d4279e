"""Non-ideal devices: programming variability, stuck-at faults and conductance quantization.

Each transform takes a :class:`~xbar_circuit.Crossbar` and returns a new, validated
crossbar with transformed conductances (wires and periphery unchanged). Random
transforms take a ``seed`` (an int, a :class:`numpy.random.SeedSequence` or a
:class:`numpy.random.Generator`) and are reproducible: the same seed gives the same
array bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._validate import renamed_keywords
from .errors import SpecError
from .spec import Crossbar

__all__ = ["lognormal_variability", "stuck_at_faults", "quantize_conductance", "Seed"]

Seed = int | np.random.SeedSequence | np.random.Generator | None
"""What the random transforms accept as ``seed``."""


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _check_crossbar(crossbar: Crossbar) -> None:
    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")


def _probability(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a probability in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise SpecError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def lognormal_variability(crossbar: Crossbar, sigma: float, *, seed: Seed = None,
                          preserve_mean: bool = False) -> Crossbar:
    """Apply lognormal programming variability to every cell.

    ``G' = G · exp(σ·z)``, with ``z`` standard normal and independent per cell, so
    ``ln(G'/G)`` is normal with mean 0 and standard deviation ``σ`` (the median of
    ``G'`` is ``G``). With ``preserve_mean=True`` the factor is
    ``exp(σ·z − σ²/2)``, so that the mean of ``G'`` is ``G`` instead. Open cells
    (G = 0) stay open.

    Parameters
    ----------
    crossbar : Crossbar
        The programmed array.
    sigma : float
        Standard deviation of ``ln G`` (dimensionless, >= 0); 0.1 is about 10 %
        spread.
    seed : int, SeedSequence or Generator, optional
        Seed of the random draws (reproducible).
    preserve_mean : bool
        Keep the mean conductance instead of the median.

    Returns
    -------
    Crossbar

    Raises
    ------
    SpecError
        For a negative or non-finite ``sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> xbar = Crossbar(np.full((2, 2), 1e-5), r_row=1.0, r_col=1.0)
    >>> a = lognormal_variability(xbar, 0.2, seed=1)
    >>> a == lognormal_variability(xbar, 0.2, seed=1), a == xbar
    (True, False)
    """
    _check_crossbar(crossbar)
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise SpecError(f"sigma must be a number >= 0, got {sigma!r}") from None
    if not (math.isfinite(sigma) and sigma >= 0.0):
        raise SpecError(f"sigma must be a finite number >= 0, got {sigma!r}")
    z = _rng(seed).standard_normal(crossbar.shape)
    exponent = sigma * z - (0.5 * sigma * sigma if preserve_mean else 0.0)
    return crossbar.replace(conductance=crossbar.conductance * np.exp(exponent))


def stuck_at_faults(crossbar: Crossbar, p_stuck_on: float, p_stuck_off: float, *,
                    g_on: float | None = None, g_off: float | None = None, seed: Seed = None,
                    return_mask: bool = False) -> Crossbar | tuple[Crossbar, np.ndarray]:
    """Make cells stuck at ON or OFF, independently with given probabilities.

    Each cell is stuck ON (``g_on``) with probability ``p_stuck_on``, stuck OFF
    (``g_off``) with probability ``p_stuck_off``, and keeps its value otherwise.

    Parameters
    ----------
    crossbar : Crossbar
        The programmed array.
    p_stuck_on, p_stuck_off : float
        Probabilities in [0, 1] with ``p_stuck_on + p_stuck_off <= 1``.
    g_on, g_off : float, optional
        Conductances (S) of stuck-ON and stuck-OFF cells; default the largest and
        smallest conductance of the array.
    seed : int, SeedSequence or Generator, optional
        Seed of the random draws (reproducible).
    return_mask : bool
        Also return the fault map: int8 (M, N), +1 stuck ON, -1 stuck OFF, 0 healthy.

    Returns
    -------
    Crossbar, or (Crossbar, ndarray) with ``return_mask``.

    Raises
    ------
    SpecError
        For probabilities outside [0, 1], a sum above 1, or invalid ``g_on``/``g_off``.
    """
    _check_crossbar(crossbar)
    p_on = _probability("p_stuck_on", p_stuck_on)
    p_off = _probability("p_stuck_off", p_stuck_off)
    if p_on + p_off > 1.0:
        raise SpecError(f"p_stuck_on + p_stuck_off must be <= 1, got {p_on} + {p_off}")
    g_on = float(crossbar.conductance.max()) if g_on is None else float(g_on)
    g_off = float(crossbar.conductance.min()) if g_off is None else float(g_off)
    for name, value in (("g_on", g_on), ("g_off", g_off)):
        if not (math.isfinite(value) and value >= 0.0):
            raise SpecError(f"{name} must be a finite conductance >= 0 S, got {value!r}")
    u = _rng(seed).random(crossbar.shape)
    mask = np.zeros(crossbar.shape, dtype=np.int8)
    mask[u < p_on] = 1
    mask[(u >= p_on) & (u < p_on + p_off)] = -1
    g = np.where(mask == 1, g_on, np.where(mask == -1, g_off, crossbar.conductance))
    faulty = crossbar.replace(conductance=g)
    return (faulty, mask) if return_mask else faulty


def quantize_conductance(crossbar: Crossbar, levels: int | ArrayLike, *,
                         g_off: float | None = None, g_on: float | None = None,
                         stochastic: bool = False, seed: Seed = None,
                         **former: Any) -> Crossbar:
    """Round every cell to one of K conductance levels.

    Parameters
    ----------
    crossbar : Crossbar
        The target (analog) conductances.
    levels : int or array_like
        K >= 2 evenly spaced levels from ``g_off`` to ``g_on``, or the level set
        itself (siemens, strictly increasing, >= 0).
    g_off, g_on : float, optional
        Range of evenly spaced levels (S); default the array's min and max. The
        former names ``g_min`` and ``g_max`` are accepted with a
        :class:`DeprecationWarning`.
    stochastic : bool
        Round up with probability equal to the fractional position between the two
        neighbouring levels (unbiased), instead of to the nearest level.
    seed : int, SeedSequence or Generator, optional
        Seed of stochastic rounding.

    Returns
    -------
    Crossbar
        Every conductance is one of the levels (values outside the range clip to
        the end levels).

    Raises
    ------
    SpecError
        For fewer than 2 levels, a level set that is not strictly increasing or has
        negative/non-finite values, or ``g_off > g_on``.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> xbar = Crossbar([[0.0, 0.3e-4, 0.8e-4, 1e-4]], r_row=1.0, r_col=1.0)
    >>> quantize_conductance(xbar, 3).conductance.tolist()
    [[0.0, 5e-05, 0.0001, 0.0001]]
    """
    _check_crossbar(crossbar)
    resolved = renamed_keywords(former, {"g_min": "g_off", "g_max": "g_on"},
                                "quantize_conductance", {"g_off": g_off, "g_on": g_on},
                                {"g_off": None, "g_on": None})
    if former:
        raise TypeError(f"quantize_conductance: unexpected keyword(s) {sorted(former)}")
    g_off, g_on = resolved["g_off"], resolved["g_on"]
    if np.ndim(levels) == 0:
        count = int(levels)  # type: ignore[arg-type]
        if count != levels or count < 2:
            raise SpecError(f"levels must be an integer >= 2 or a level set, got {levels!r}")
        lo = float(crossbar.conductance.min()) if g_off is None else float(g_off)
        hi = float(crossbar.conductance.max()) if g_on is None else float(g_on)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo <= hi):
            raise SpecError(f"need 0 <= g_off <= g_on < inf, got g_off={lo!r}, g_on={hi!r}")
        level_set = np.linspace(lo, hi, count)
    else:
        level_set = np.asarray(levels, dtype=np.float64).ravel()
        if level_set.size < 2:
            raise SpecError(f"a level set needs at least 2 levels, got {level_set.size}")
        if not np.all(np.isfinite(level_set)) or level_set.min() < 0.0:
            raise SpecError("conductance levels must be finite and >= 0 S")
        if not np.all(np.diff(level_set) > 0):
            raise SpecError("conductance levels must be strictly increasing")
    g = np.clip(crossbar.conductance, level_set[0], level_set[-1])
    upper = np.clip(np.searchsorted(level_set, g, side="left"), 1, level_set.size - 1)
    below, above = level_set[upper - 1], level_set[upper]
    fraction = (g - below) / (above - below)
    if stochastic:
        go_up = _rng(seed).random(g.shape) < fraction
    else:
        go_up = fraction >= 0.5
    return crossbar.replace(conductance=np.where(go_up, above, below))
