"""Click commands ``xbar calibrate`` and ``xbar plot`` (registered by xbar_circuit.cli)."""

from __future__ import annotations

import sys

import click

from .._cli_common import (
    common_options,
    deprecated_alias,
    emit_json,
    log,
    refuse_short_o,
    resolve_alias,
    state,
)
from ..errors import XbarError

__all__ = ["calibrate_command", "plot_command"]


@click.command(name="calibrate")
@click.argument("sweep", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="NetCDF table to write; checkpoints go to OUTPUT.partial/ and a rerun "
                   "computes only the missing points.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes of the local Dask cluster (default: one per core).")
@click.option("--serial", is_flag=True, help="Run in this process, without Dask.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (--quiet implies it).")
@click.option("--no-ngspice-check", is_flag=True,
              help="Skip the ngspice cross-check of one point.")
@common_options
def calibrate_command(sweep: str, output: str, workers: int | None, serial: bool,
                      scheduler: str | None, no_progress: bool, no_ngspice_check: bool,
                      as_json: bool) -> None:
    """Run the exact solves of SWEEP (YAML/JSON) and write a lookup table.

    With --json: {"output", "points", "computed", "seconds", "points_per_second",
    "workers"}.
    """
    from .calibration import calibrate

    if serial and scheduler:
        raise click.UsageError("--serial and --scheduler exclude each other")
    try:
        result = calibrate(sweep, output, workers=0 if serial else workers,
                           scheduler=scheduler, progress=state().progress and not no_progress,
                           ngspice_check=not no_ngspice_check)
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json({"output": str(result.path), "points": result.n_points,
                   "computed": result.computed, "seconds": result.seconds,
                   "points_per_second": result.points_per_second,
                   "workers": result.workers})
        return
    click.echo(f"wrote {result.path}: {result.n_points} points, {result.computed} computed now "
               f"in {result.seconds:.1f} s ({result.points_per_second:.2f} points/s, "
               f"{result.workers or 'serial'} workers)")


@click.command(name="plot")
@click.argument("table", type=click.Path(exists=True, dir_okay=False))
@click.option("--out-dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the PNG files.")
@deprecated_alias("--outdir", "outdir", type=click.Path(file_okay=False))
@refuse_short_o("plot")
@click.option("--prefix", default="table", show_default=True, help="File name prefix.")
@click.option("--at", "fixed", default=None, metavar="JSON",
              help='Grid values to show, e.g. \'{"density": 0.5, "r_driver": 0}\' '
                   "(nearest grid value; default the middle of each axis).")
@common_options
def plot_command(table: str, out_dir: str, outdir: str | None, prefix: str, fixed: str | None,
                 as_json: bool) -> None:
    """Plot NF versus array size and an attenuation heatmap of TABLE (PNG).

    Prints the files written; with --json: {"files", "at" (the grid point used),
    "notes"}.
    """
    import os

    from .._validate import load_json
    from ._errors import TableError
    from .lut import LookupTable
    from .plots import plot_heatmap, plot_nf_vs_size, snap_fixed

    out_dir = resolve_alias(out_dir, outdir, new="--out-dir", old="--outdir",
                            new_param="out_dir")
    try:
        lut = LookupTable.load(table)
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        at = load_json(fixed, "--at", error=TableError) if fixed else None
        indices, notes = snap_fixed(lut, at)
    except XbarError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    for note in notes:
        log.info("--at %s", note)
    try:
        os.makedirs(out_dir, exist_ok=True)
        paths = [plot_nf_vs_size(lut, os.path.join(out_dir, f"{prefix}_nf_vs_size.png"),
                                 fixed=at),
                 plot_heatmap(lut, os.path.join(out_dir, f"{prefix}_cell_loss.png"), fixed=at)]
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write the plots to {out_dir}: "
                                   f"{exc.strerror or exc}") from None
    if as_json:
        point = {k: float(lut._axes[k][i]) for k, i in indices.items()}
        emit_json({"files": [str(p) for p in paths], "at": point, "notes": notes})
        return
    for path in paths:
        click.echo(path)
    sys.stdout.flush()
