"""NeuroSim V1.5's output-noise lookup table (``output,mean,std``) from exact solves.

NeuroSim V1.5 can replace its own device-level model of a column read by a table of
pre-characterised statistics ("SPICE or silicon"): ``--output_noise -1`` together with
``--output_noise_file FILE``. For every *ideal* ADC output code ``k`` the file gives the
mean and the standard deviation of the code the hardware actually produces, and NeuroSim
samples ``round(Normal(mean[k], std[k]))`` clipped to ``[0, 2**adc_precision]``.

:func:`neurosim_adc_table` produces those statistics from exact circuit solves of a given
array (wires, drivers, sense, cell model) with device-variability samples drawn by
:mod:`xbar_circuit.variability`, and :func:`write_neurosim_csv` writes the file.
docs/neurosim.md describes the format, its source references and the command
``xbar export-neurosim``.

Units: conductances in siemens, voltages in volts, currents in amperes; ``mean`` and
``std`` of the file are in ADC codes (LSB), one code being the current of one unit of
the digit product ``Σ_i x_i d_i``: ``v_read / (2**dac_bits - 1) · (g_on - g_off) /
(2**bits_per_cell - 1)``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_int, check_real
from .api import solve
from .backends import BACKENDS, DEFAULT_BACKEND
from .errors import BackendError, InputError, SpecError
from .presets import Preset, get_preset
from .spec import Crossbar
from .variability import Seed, lognormal_variability

__all__ = ["CSV_COLUMNS", "OFFSETS", "NeuroSimADCTable", "neurosim_adc_table",
           "write_neurosim_csv", "read_neurosim_csv"]

CSV_COLUMNS = ("output", "mean", "std")
"""The header of the file, in this order (NeuroSim looks the columns up by name)."""

OFFSETS = {
    "digital": "subtract g_off · v_unit · Σx (the OFF-state current of the known inputs)",
    "reference": "subtract the exact current of the array's last column, a reference "
                 "column of OFF cells (NeuroSim's reference column, varied like the others)",
}
"""How the OFF-state current is removed before a column current becomes a code."""

DEFAULT_SHAPE = (128, 128)
"""Array size used with a preset: NeuroSim V1.5's default ``--sub_array [128, 128]``."""


@dataclasses.dataclass(frozen=True, eq=False)
class NeuroSimADCTable:
    """Per-level statistics of the exact column output, in NeuroSim's terms.

    Attributes
    ----------
    output : ndarray of int, shape (L,)
        Ideal ADC output code ``k = 0 … L-1``: the column's digit product
        ``Σ_i x_i d_i`` (input digit times cell digit). Row ``k`` of the file describes
        code ``k``; NeuroSim indexes the rows by position.
    mean, std : ndarray of float, shape (L,)
        Mean and sample standard deviation (ddof = 1) of the exact column output, in ADC
        codes (LSB), before NeuroSim's rounding and clipping.
    count : ndarray of int, shape (L,)
        Number of exact samples behind each level (0 for a code no input/weight pattern
        can produce; its row then holds ``mean = k``, ``std = 0``).
    mean_current, std_current : ndarray of float, shape (L,)
        The same statistics in amperes (offset-removed column current).
    lsb_current : float
        Current of one code, amperes.
    settings : dict
        The configuration (JSON-safe): array, devices, ADC, variability, seed.
    samples : dict of ndarray
        Every exact sample: ``level`` (ideal code), ``code`` (exact output in codes),
        ``current`` (exact column current, A, offset not removed), ``ideal_current``
        (``V · G`` of the programmed, unvaried conductances, A), ``offset_current`` (A),
        ``column`` (index of the column read) and ``solve`` (which solve it came from).
    """

    output: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    mean_current: np.ndarray
    std_current: np.ndarray
    lsb_current: float
    settings: dict[str, Any]
    samples: dict[str, np.ndarray]

    @property
    def n_levels(self) -> int:
        """L, the number of rows of the file."""
        return int(self.output.size)

    def rows(self) -> list[tuple[int, float, float]]:
        """The file's rows ``(output, mean, std)``."""
        return [(int(k), float(m), float(s))
                for k, m, s in zip(self.output, self.mean, self.std, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: settings and the per-level columns (without the samples)."""
        return {
            "settings": dict(self.settings),
            "columns": list(CSV_COLUMNS),
            "output": self.output.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": self.count.tolist(),
            "mean_current": self.mean_current.tolist(),
            "std_current": self.std_current.tolist(),
            "lsb_current": self.lsb_current,
        }


# ----------------------------------------------------------------------------- helpers
def _template(array: Crossbar | Preset | str, shape: tuple[int, int] | None
              ) -> tuple[Crossbar, Preset | None]:
    if isinstance(array, str):
        array = get_preset(array)
    if isinstance(array, Preset):
        if shape is None:
            shape = DEFAULT_SHAPE
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise SpecError(f"shape must be (rows, columns), got {shape!r}")
        m = check_int("shape[0] (rows)", shape[0], 1, error=SpecError)
        n = check_int("shape[1] (columns)", shape[1], 1, error=SpecError)
        xbar = Crossbar(np.full((m, n), array.g_off), r_row=array.r_row, r_col=array.r_col,
                        r_driver=array.r_driver, r_sense=array.r_sense)
        return xbar, array
    if isinstance(array, Crossbar):
        if shape is not None and tuple(shape) != array.shape:
            raise SpecError(f"shape {tuple(shape)} was given with a Crossbar of shape "
                            f"{array.shape}; the crossbar fixes the shape (omit shape)")
        return array, None
    raise SpecError("array must be an xbar_circuit.Crossbar, a Preset or a preset name, got "
                    f"{type(array).__name__}")


def _suffix_reachable(x: np.ndarray, n_digits: int, limit: int) -> np.ndarray:
    """``S[m, s]``: can rows m … M-1 (inputs ``x``) sum to ``s <= limit`` with digits
    0 … ``n_digits``? Shape (M + 1, limit + 1)."""
    m = x.size
    reach = np.zeros((m + 1, limit + 1), dtype=bool)
    reach[m, 0] = True
    for i in range(m - 1, -1, -1):
        nxt = reach[i + 1]
        cur = nxt.copy()
        if x[i] > 0:
            for d in range(1, n_digits + 1):
                step = int(x[i]) * d
                if step > limit:
                    break
                cur[step:] |= nxt[:limit + 1 - step]
        reach[i] = cur
    return reach


def _reachable_levels(n_rows: int, x_max: int, d_max: int, limit: int) -> np.ndarray:
    """Which sums ``Σ_i x_i d_i <= limit`` exist with x_i <= x_max, d_i <= d_max."""
    products = sorted({x * d for x in range(x_max + 1) for d in range(d_max + 1)})
    one = np.zeros(limit + 1, dtype=bool)
    for p in products:
        if p <= limit:
            one[p] = True
    reach = np.zeros(limit + 1, dtype=bool)
    reach[0] = True
    for _ in range(n_rows):
        nxt = reach.copy()
        for p in products:
            if 0 < p <= limit:
                nxt[p:] |= reach[:limit + 1 - p]
        if np.array_equal(nxt, reach):
            break
        reach = nxt
    return reach


def _draw_inputs(rng: np.random.Generator, n_rows: int, x_max: int, d_max: int,
                 k_max: int, attempt: int) -> np.ndarray:
    """Input digits (M,) with enough capacity ``Σ x · d_max >= k_max``."""
    a_min = max(0, math.ceil(k_max / (x_max * d_max)))
    if a_min > n_rows:  # pragma: no cover - excluded by the level range
        raise AssertionError("level beyond the array's capacity")
    a = int(rng.integers(a_min, n_rows + 1))
    x = np.zeros(n_rows, dtype=np.int64)
    active = rng.permutation(n_rows)[:a]
    x[active] = rng.integers(1, x_max + 1, size=a)
    # Later attempts push inputs to full scale, which reaches every capacity.
    if attempt % 2 and x_max > 1:
        full = rng.random(a) < min(1.0, attempt / 8.0)
        x[active[full]] = x_max
    short = k_max - int(x.sum()) * d_max
    if short > 0:  # raise the smallest inputs to full scale until the level fits
        for i in active[np.argsort(x[active], kind="stable")]:
            if short <= 0:
                break
            short -= (x_max - int(x[i])) * d_max
            x[i] = x_max
    return x


def _inputs_for_level(rng: np.random.Generator, n_rows: int, x_max: int, d_max: int,
                      level: int) -> np.ndarray:
    """Input digits (M,) of one random pattern whose digit product can be ``level``.

    Rows are visited in random order; each takes an (input, cell) digit pair chosen
    uniformly among those whose product leaves a remainder the remaining rows can still
    produce (exact reachability with free digits). ``level`` must be reachable.
    """
    products = np.array([x * d for x in range(x_max + 1) for d in range(d_max + 1)])
    inputs = np.array([x for x in range(x_max + 1) for _ in range(d_max + 1)])
    reach = np.zeros((n_rows + 1, level + 1), dtype=bool)  # reach[j]: sums of j rows
    reach[0, 0] = True
    for j in range(1, n_rows + 1):
        for p in set(products.tolist()):
            if p <= level:
                reach[j, p:] |= reach[j - 1, :level + 1 - p]
    if not reach[n_rows, level]:  # pragma: no cover - callers pass reachable levels
        raise AssertionError(f"level {level} is not reachable")
    x = np.zeros(n_rows, dtype=np.int64)
    remaining = level
    for step, row in enumerate(rng.permutation(n_rows)):
        rest = n_rows - step - 1
        ok = (products <= remaining) & reach[rest][np.clip(remaining - products, 0, level)]
        pick = int(rng.choice(np.flatnonzero(ok)))
        x[row] = inputs[pick]
        remaining -= int(products[pick])
    return x


def _assign_digits(rng: np.random.Generator, x: np.ndarray, targets: np.ndarray,
                   d_max: int) -> np.ndarray | None:
    """Cell digits (M, T) with ``x @ d[:, t] == targets[t]`` exactly, drawn at random.

    Rows are visited in random order; each takes a digit chosen uniformly among those
    that leave a remainder the remaining rows can still produce (exact suffix
    reachability), so every target is met. None if some target is not reachable.
    """
    m = x.size
    order = rng.permutation(m)
    limit = int(targets.max(initial=0))
    reach = _suffix_reachable(x[order], d_max, limit)
    if not np.all(reach[0, targets]):
        return None
    digits = np.zeros((m, targets.size), dtype=np.int64)
    remaining = targets.astype(np.int64).copy()
    choices = np.arange(d_max + 1)
    for step, row in enumerate(order):
        if x[row] == 0:
            digits[row] = rng.integers(0, d_max + 1, size=targets.size)
            continue
        left = remaining[:, None] - int(x[row]) * choices[None, :]
        ok = (left >= 0) & reach[step + 1][np.clip(left, 0, limit)]
        score = np.where(ok, rng.random(ok.shape), -1.0)
        pick = np.argmax(score, axis=1)
        digits[row] = pick
        remaining = remaining - int(x[row]) * pick
    if np.any(remaining != 0):  # pragma: no cover - guaranteed by the reachability table
        raise AssertionError("digit assignment missed its target")
    return digits


# ----------------------------------------------------------------------------- the table
def neurosim_adc_table(
    array: Crossbar | Preset | str,
    *,
    adc_bits: int = 7,
    bits_per_cell: int = 1,
    dac_bits: int = 1,
    g_on: float | None = None,
    g_off: float | None = None,
    v_read: float | None = None,
    n_samples: int = 64,
    sigma: float = 0.0,
    preserve_mean: bool = False,
    offset: str = "digital",
    shape: tuple[int, int] | None = None,
    seed: Seed = 0,
    backend: str = DEFAULT_BACKEND,
    progress: Callable[[int, int], None] | None = None,
) -> NeuroSimADCTable:
    """Characterise one array's column read per ideal ADC code, as NeuroSim V1.5 reads it.

    For every ideal code ``k`` (the digit product ``Σ_i x_i d_i`` of one column), the
    function draws ``n_samples`` random input/weight patterns that produce exactly ``k``
    on a column, programs the cells to ``g_off + d (g_on - g_off) / (2**bits_per_cell -
    1)``, draws device variability, solves the circuit exactly and converts the column
    current into codes. Each solve reads every column of the array (each column targets
    its own level, at a random position), so positions and neighbouring loads vary.

    Parameters
    ----------
    array : Crossbar, Preset or str
        The array: a :class:`~xbar_circuit.Crossbar` whose size, wires, drivers, sense,
        cell model and topology are used (its own conductances are replaced by the
        patterns), or a preset (name) giving wires, ``g_on``, ``g_off`` and ``v_read``.
        The rows are the rows read in parallel (NeuroSim's ``parallel_read``).
    adc_bits : int
        NeuroSim's ``adc_precision`` (1 … 16); codes run from 0 to ``2**adc_bits``.
    bits_per_cell : int
        NeuroSim's ``bitcell`` (1 … 8): cell digits 0 … ``2**bits_per_cell - 1``.
    dac_bits : int
        NeuroSim's ``dac_precision`` (1 … 8): input digits 0 … ``2**dac_bits - 1``,
        applied as ``x · v_read / (2**dac_bits - 1)`` volts.
    g_on, g_off : float, optional
        Highest and lowest cell conductance, siemens (``g_on > g_off >= 0``). Default:
        the preset's, else the template crossbar's largest and smallest conductance.
    v_read : float, optional
        Full-scale input voltage, volts (> 0). Default: the preset's, else 1.0 V
        (NeuroSim V1.5's ``--vdd`` default). For linear cells the codes do not depend
        on it.
    n_samples : int
        Exact samples per level (>= 2).
    sigma : float
        Lognormal programming variability of every cell, ``G' = G exp(σ z)``
        (:func:`xbar_circuit.variability.lognormal_variability`; dimensionless, >= 0),
        drawn afresh for every solve.
    preserve_mean : bool
        Keep the mean conductance instead of the median under variability.
    offset : {"digital", "reference"}
        How the OFF-state current is removed (see :data:`OFFSETS`). ``"reference"``
        uses the last column as the reference column (it is never a data column).
    shape : (int, int), optional
        Rows and columns with a preset (default 128 x 128); not with a Crossbar.
    seed : int, SeedSequence, Generator or None
        Seed of the patterns and variability draws (reproducible).
    backend : str
        Solver backend (``"nodal"`` by default).
    progress : callable, optional
        Called as ``progress(done, total)`` after every solve.

    Returns
    -------
    NeuroSimADCTable
        ``output``, ``mean``, ``std`` (codes) per level, with counts, amperes and every
        sample.

    Raises
    ------
    SpecError
        For an invalid array, conductance range, bit width, sample count, ``sigma``,
        offset or shape (the message names the parameter).
    BackendError
        For an unknown backend.

    Examples
    --------
    >>> from xbar_circuit import Crossbar
    >>> import numpy as np
    >>> xbar = Crossbar(np.zeros((8, 4)), r_row=0.0, r_col=0.0)
    >>> table = neurosim_adc_table(xbar, adc_bits=3, g_on=1e-5, g_off=1e-7, n_samples=4)
    >>> table.output.tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8]
    >>> np.round(table.mean, 9).tolist(), float(np.round(table.std.max(), 9))
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 0.0)
    """
    template, preset = _template(array, shape)
    adc_bits = check_int("adc_bits", adc_bits, 1, 16, error=SpecError)
    bits_per_cell = check_int("bits_per_cell", bits_per_cell, 1, 8, error=SpecError)
    dac_bits = check_int("dac_bits", dac_bits, 1, 8, error=SpecError)
    n_samples = check_int("n_samples", n_samples, 2, 10**6, error=SpecError)
    sigma = check_real("sigma", sigma, 0.0, error=SpecError)
    if progress is not None and not callable(progress):
        raise SpecError(f"progress must be a callable progress(done, total), got "
                        f"{type(progress).__name__}")
    if offset not in OFFSETS:
        raise SpecError(f"offset must be one of {', '.join(OFFSETS)}, got {offset!r}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    if g_on is None:
        g_on = preset.g_on if preset is not None else float(template.conductance.max())
    if g_off is None:
        g_off = preset.g_off if preset is not None else float(template.conductance.min())
    g_on = check_real("g_on", g_on, 0.0, error=SpecError, unit="S", lo_open=True)
    g_off = check_real("g_off", g_off, 0.0, error=SpecError, unit="S")
    if not g_on > g_off:
        raise SpecError(f"g_on must be > g_off (the cell's conductance range), got g_on = "
                        f"{g_on!r} S, g_off = {g_off!r} S (pass g_on/g_off explicitly when "
                        "the template crossbar is uniform)")
    if v_read is None:
        v_read = preset.v_read if preset is not None else 1.0
    v_read = check_real("v_read", v_read, 0.0, error=SpecError, unit="V", lo_open=True)

    m, n = template.shape
    data_cols = n - 1 if offset == "reference" else n
    if data_cols < 1:
        raise SpecError("offset='reference' needs at least 2 columns (one is the reference)")
    d_max = 2 ** bits_per_cell - 1
    x_max = 2 ** dac_bits - 1
    top = min(2 ** adc_bits, m * x_max * d_max)
    levels = np.arange(top + 1)
    reachable = _reachable_levels(m, x_max, d_max, top)
    step_g = (g_on - g_off) / d_max
    v_unit = v_read / x_max
    lsb = v_unit * step_g

    if isinstance(seed, np.random.Generator):
        rng = seed
        seeds = None
    else:
        try:
            root = seed if isinstance(seed, np.random.SeedSequence) else \
                np.random.SeedSequence(seed)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"seed must be a non-negative integer, a SeedSequence, a "
                            f"Generator or None, got {seed!r} ({exc})") from None
        rng = np.random.default_rng(root.spawn(1)[0])
        seeds = root

    slots = np.repeat(levels[reachable], n_samples)
    chunks = [slots[i:i + data_cols] for i in range(0, slots.size, data_cols)]
    queue: list[np.ndarray] = list(chunks)
    out: dict[str, list[Any]] = {key: [] for key in (
        "level", "code", "current", "ideal_current", "offset_current", "column", "solve")}
    total = len(queue)
    solves = 0
    while queue:
        targets = queue.pop(0)
        digits_t = None
        for attempt in range(16):
            x = _draw_inputs(rng, m, x_max, d_max, int(targets.max(initial=0)), attempt)
            digits_t = _assign_digits(rng, x, targets, d_max)
            if digits_t is not None:
                break
        if digits_t is None and targets.size == 1:
            # Multi-bit inputs: some codes need particular input digits; build them.
            x = _inputs_for_level(rng, m, x_max, d_max, int(targets[0]))
            digits_t = _assign_digits(rng, x, targets, d_max)
        if digits_t is None:
            half = targets.size // 2
            queue[:0] = [targets[:half], targets[half:]]
            total += 1
            continue
        columns = rng.permutation(data_cols)[:targets.size]
        digits = rng.integers(0, d_max + 1, size=(m, n))
        if offset == "reference":
            digits[:, n - 1] = 0
        digits[:, columns] = digits_t
        g = g_off + digits * step_g
        xbar = template.replace(conductance=g)
        if sigma > 0.0:
            var_seed = seeds.spawn(1)[0] if seeds is not None else rng
            xbar = lognormal_variability(xbar, sigma, seed=var_seed,
                                         preserve_mean=preserve_mean)
        volts = x * v_unit
        current = np.asarray(solve(xbar, volts, backend=backend).column_currents,
                             dtype=np.float64)
        if offset == "digital":
            offset_current = np.full(targets.size, g_off * float(volts.sum()))
        else:
            offset_current = np.full(targets.size, current[n - 1])
        read = current[columns]
        out["level"].append(targets)
        out["code"].append((read - offset_current) / lsb)
        out["current"].append(read)
        out["ideal_current"].append(volts @ g[:, columns])
        out["offset_current"].append(offset_current)
        out["column"].append(columns)
        out["solve"].append(np.full(targets.size, solves))
        solves += 1
        if progress is not None:
            progress(solves, total)

    samples = {key: np.concatenate(values) if values else np.zeros(0)
               for key, values in out.items()}
    for key in ("level", "column", "solve"):
        samples[key] = samples[key].astype(np.int64)
    mean = levels.astype(np.float64)
    std = np.zeros(levels.size)
    count = np.zeros(levels.size, dtype=np.int64)
    order = np.argsort(samples["level"], kind="stable")
    bounds = np.searchsorted(samples["level"][order], np.append(levels, top + 1))
    codes = samples["code"][order]
    for k in levels:
        group = codes[bounds[k]:bounds[k + 1]]
        count[k] = group.size
        if group.size:
            mean[k] = group.mean()
            std[k] = group.std(ddof=1) if group.size > 1 else 0.0
    missing = levels[count == 0]
    if missing.size:
        warnings.warn(f"{missing.size} ADC code(s) cannot be produced by any input/weight "
                      f"pattern of this array ({missing[:8].tolist()}"
                      f"{' ...' if missing.size > 8 else ''}); their rows hold the ideal "
                      "code with std 0 so that NeuroSim's row indices stay aligned",
                      UserWarning, stacklevel=2)
    settings = {
        "rows": m, "cols": n, "data_columns": data_cols,
        "r_row": np.asarray(template.r_row).tolist(),
        "r_col": np.asarray(template.r_col).tolist(),
        "r_driver": template.r_driver, "r_sense": template.r_sense,
        "device": template.device.kind,
        "preset": preset.name if preset is not None else None,
        "adc_bits": adc_bits, "bits_per_cell": bits_per_cell, "dac_bits": dac_bits,
        "g_on": g_on, "g_off": g_off, "v_read": v_read, "n_samples": n_samples,
        "sigma": sigma, "preserve_mean": bool(preserve_mean), "offset": offset,
        "seed": seed if isinstance(seed, int) else None, "backend": backend,
        "solves": solves,
    }
    return NeuroSimADCTable(
        output=levels.astype(np.int64), mean=mean, std=std, count=count,
        mean_current=mean * lsb, std_current=std * lsb, lsb_current=lsb,
        settings=settings, samples=samples)


# ----------------------------------------------------------------------------- the file
def write_neurosim_csv(path: str | os.PathLike[str], table: NeuroSimADCTable) -> Path:
    """Write ``table`` as NeuroSim V1.5's ``--output_noise_file``.

    One header line ``output,mean,std`` and one line per ideal code ``0 … L-1`` in
    order (NeuroSim indexes the rows by position), numbers in full precision
    (``repr``), no blank lines.

    Parameters
    ----------
    path : str or PathLike
        The CSV file to write (overwritten).
    table : NeuroSimADCTable
        From :func:`neurosim_adc_table`.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        When ``table`` is not a :class:`NeuroSimADCTable` or holds non-finite values.
    """
    if not isinstance(table, NeuroSimADCTable):
        raise InputError(f"table must be a NeuroSimADCTable, got {type(table).__name__}")
    if not (np.all(np.isfinite(table.mean)) and np.all(np.isfinite(table.std))):
        raise InputError("table holds non-finite mean or std values")
    if not np.array_equal(table.output, np.arange(table.n_levels)):
        raise InputError("table.output must be 0, 1, ..., L-1 (NeuroSim indexes rows by "
                         "position)")
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for k, mean, std in table.rows():
            writer.writerow((str(k), repr(mean), repr(std)))
    return path


def read_neurosim_csv(path: str | os.PathLike[str], adc_bits: int | None = None
                      ) -> dict[str, list[float]]:
    """Read an ``output,mean,std`` file the way NeuroSim V1.5 does.

    Header row first; the columns are found by name (``header.index``), every later row
    converts each of the three fields with ``float``; more than ``2**adc_bits + 1`` rows
    is refused.

    Parameters
    ----------
    path : str or PathLike
        The CSV file.
    adc_bits : int, optional
        NeuroSim's ``adc_precision``, to check the row count.

    Returns
    -------
    dict
        ``{"output": [...], "mean": [...], "std": [...]}`` in file order.

    Raises
    ------
    InputError
        For a missing column, an empty or unparsable row, or too many rows.
    """
    if adc_bits is not None:
        adc_bits = check_int("adc_bits", adc_bits, 1, 16)
    try:
        handle = Path(path).open(newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path}: not a text CSV file ({exc})") from None
        if header is None:
            raise InputError(f"{path}: empty file (NeuroSim needs the header output,mean,std)")
        missing = [name for name in CSV_COLUMNS if name not in header]
        if missing:
            raise InputError(f"{path}: header lacks column(s) {', '.join(missing)}")
        index = {name: header.index(name) for name in CSV_COLUMNS}
        columns: dict[str, list[float]] = {name: [] for name in CSV_COLUMNS}
        try:
            for line, row in enumerate(reader, start=2):
                try:
                    for name in CSV_COLUMNS:
                        columns[name].append(float(row[index[name]]))
                except (IndexError, ValueError):
                    raise InputError(f"{path}, line {line}: NeuroSim cannot read {row!r}"
                                     ) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path}: not a text CSV file ({exc})") from None
    if adc_bits is not None:
        if len(columns["output"]) > 2 ** adc_bits + 1:
            raise InputError(f"{path}: {len(columns['output'])} rows, more than "
                             f"2**{adc_bits} + 1 (NeuroSim refuses the file)")
    return columns
