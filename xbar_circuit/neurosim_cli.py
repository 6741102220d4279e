"""``xbar export-neurosim``: write NeuroSim V1.5's ``output,mean,std`` file from exact solves.

The command object is :data:`neurosim_command`; the ``xbar`` group registers it. See
docs/neurosim.md for the file format and its NeuroSim source references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ._cli_common import (
    common_options,
    emit_json,
    explicit_options,
    format_si,
    log,
    progress_bar,
)
from .backends import BACKENDS, DEFAULT_BACKEND
from .errors import XbarError
from .neurosim import OFFSETS, neurosim_adc_table, write_neurosim_csv
from .spec import Crossbar

__all__ = ["neurosim_command"]


def _parse_size(ctx: click.Context, param: click.Parameter, text: str | None
                ) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"must look like 128x128 (rows x columns), got {text!r}"
                                 ) from None
    if rows < 1 or cols < 1:
        raise click.BadParameter(f"must be at least 1x1, got {text!r}")
    return rows, cols


def _array(spec: str | None, preset: str | None, size: tuple[int, int] | None,
           wires: dict[str, float | None], g_off: float | None) -> Any:
    """The array template: a spec file, a preset name or a plain uniform array."""
    given_wires = explicit_options(*wires)
    if spec is not None:
        if preset is not None or size is not None or given_wires:
            raise click.UsageError("--spec fixes the array: give none of --preset, --size, "
                                   "--r-row, --r-col, --r-driver, --r-sense with it")
        return Crossbar.load(spec)
    if preset is not None:
        if given_wires:
            raise click.UsageError("--preset fixes the wires: give none of --r-row, --r-col, "
                                   "--r-driver, --r-sense with it")
        return preset
    m, n = size if size is not None else (128, 128)
    def pick(name: str, default: float) -> float:
        value = wires[name]
        return default if value is None else value

    return Crossbar(np.full((m, n), 1e-6 if g_off is None else g_off),
                    r_row=pick("r_row", 1.0), r_col=pick("r_col", 1.0),
                    r_driver=pick("r_driver", 0.0), r_sense=pick("r_sense", 0.0))


@click.command(name="export-neurosim")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The CSV file to write (NeuroSim's --output_noise_file).")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Crossbar spec JSON: its size, wires, periphery and cell model are used "
                   "(its conductances are replaced by the patterns).")
@click.option("--preset", default=None, metavar="NAME",
              help="Wires, g_on, g_off and v_read of a cited preset (aihwkit_ir_drop, "
                   "neurosim_rram_40nm, rram_10k_ratio10).")
@click.option("--size", default=None, metavar="MxN", callback=_parse_size,
              help="Rows read in parallel x columns (default 128x128, NeuroSim's "
                   "sub-array); not with --spec.")
@click.option("--r-row", type=float, default=None,
              help="Row segment resistance (ohm; default 1.0).")
@click.option("--r-col", type=float, default=None,
              help="Column segment resistance (ohm; default 1.0).")
@click.option("--r-driver", type=float, default=None,
              help="Driver output resistance (ohm; default 0).")
@click.option("--r-sense", type=float, default=None,
              help="Sense resistance to the virtual ground (ohm; default 0).")
@click.option("--g-on", type=float, default=None,
              help="Highest cell conductance (S; default the preset's or the spec's "
                   "largest, else 1e-4).")
@click.option("--g-off", type=float, default=None,
              help="Lowest cell conductance (S; default the preset's or the spec's "
                   "smallest, else 1e-6).")
@click.option("--v-read", type=float, default=None,
              help="Full-scale input voltage (V; default the preset's, else 1.0).")
@click.option("--adc-bits", default=7, show_default=True, type=int,
              help="NeuroSim's adc_precision: codes 0 ... 2**bits.")
@click.option("--bits-per-cell", default=1, show_default=True, type=int,
              help="NeuroSim's bitcell.")
@click.option("--dac-bits", default=1, show_default=True, type=int,
              help="NeuroSim's dac_precision.")
@click.option("--samples", "n_samples", default=64, show_default=True, type=int,
              help="Exact samples per ADC code.")
@click.option("--sigma", default=0.0, show_default=True, type=float,
              help="Lognormal programming variability of every cell (std of ln G).")
@click.option("--preserve-mean", is_flag=True,
              help="Variability keeps the mean conductance instead of the median.")
@click.option("--offset", type=click.Choice(sorted(OFFSETS)), default="digital",
              show_default=True,
              help="Remove the OFF-state current digitally or with a reference column "
                   "(the last column).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the patterns and variability draws.")
@click.option("--backend", type=click.Choice(sorted(BACKENDS)), default=DEFAULT_BACKEND,
              show_default=True, help="Solver backend.")
@common_options
def neurosim_command(output: str, spec: str | None, preset: str | None,
                     size: tuple[int, int] | None, r_row: float | None, r_col: float | None,
                     r_driver: float | None, r_sense: float | None, g_on: float | None,
                     g_off: float | None, v_read: float | None, adc_bits: int,
                     bits_per_cell: int, dac_bits: int, n_samples: int, sigma: float,
                     preserve_mean: bool, offset: str, seed: int, backend: str,
                     as_json: bool) -> None:
    """Write NeuroSim V1.5's ADC output-noise CSV (output,mean,std) from exact solves.

    For every ideal ADC code k (a column's digit product), exact solves of random
    input/weight patterns producing k, with lognormal variability, give the mean and
    standard deviation of the column output in codes. Use the file in NeuroSim with
    --output_noise -1 --output_noise_file FILE.

    With --json: {"output" (the file), "settings", "columns", "output_codes", "mean",
    "std", "count", "mean_current", "std_current", "lsb_current"}.
    """
    wires = {"r_row": r_row, "r_col": r_col, "r_driver": r_driver, "r_sense": r_sense}
    folder = Path(output).resolve().parent
    if not folder.is_dir():       # before the solves, not after them
        raise click.BadParameter(f"the folder {folder} does not exist",
                                 param_hint="'-o' / '--output'")
    try:
        array = _array(spec, preset, size, wires, g_off)
        if g_on is None and spec is None and preset is None:
            g_on = 1e-4
        if g_off is None and spec is None and preset is None:
            g_off = 1e-6
        bars: list[Any] = []       # the bar starts with the first solve, after validation

        def advance(done: int, total: int) -> None:
            if not bars:
                bars.append(progress_bar(total, "export-neurosim", unit="solve"))
            bars[0].total = total
            bars[0].update(done - bars[0].n)

        try:
            table = neurosim_adc_table(
                array, adc_bits=adc_bits, bits_per_cell=bits_per_cell, dac_bits=dac_bits,
                g_on=g_on, g_off=g_off, v_read=v_read, n_samples=n_samples, sigma=sigma,
                preserve_mean=preserve_mean, offset=offset,
                shape=size if preset is not None else None, seed=seed, backend=backend,
                progress=advance)
        finally:
            for bar in bars:
                bar.close()
        path = write_neurosim_csv(output, table)
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None

    if as_json:
        report = table.to_dict()
        report["output_codes"] = report.pop("output")
        emit_json({"output": str(path), **report})
        return
    s = table.settings
    log.info("wrote %s: %d rows (codes 0 ... %d) from %d exact solves of a %dx%d array, "
             "%d samples per code", path, table.n_levels, table.n_levels - 1, s["solves"],
             s["rows"], s["cols"], n_samples)
    deviation = np.abs(table.mean - table.output)
    log.info("largest |mean - code| %.4g LSB (code %d), largest std %.4g LSB (code %d); "
             "one code = %s", float(deviation.max()), int(deviation.argmax()),
             float(table.std.max()), int(table.std.argmax()), format_si(table.lsb_current, "A"))
    log.info("use it in NeuroSim V1.5: --output_noise -1 --output_noise_file %s "
             "--adc_precision %d --bitcell %d --dac_precision %d --parallel_read %d",
             path, adc_bits, bits_per_cell, dac_bits, s["rows"])
