"""The ``xbar`` command line.

Commands
--------
``xbar netlist``   spec JSON -> SPICE deck.
``xbar solve``     solve a spec (or a generated random array) on a backend; ``--compare``
                   runs two backends and prints their agreement.
``xbar info``      version, backends and whether ngspice is available.
``xbar map``, ``calibrate``, ``plot``, ``export-neurosim``: imported on first use
                   (LAZY_COMMANDS).

Every command takes ``--json``, ``-q/--quiet`` and ``-v/--verbose`` (see _cli_common).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import click
import numpy as np

from . import __version__
from ._cli_common import (
    common_options,
    deprecated_alias,
    emit_json,
    format_si,
    format_si_list,
    group_options,
    json_safe,
    log,
    resolve_alias,
    stage,
    state,
)
from ._validate import as_real_array, check_real, load_json, short_repr
from .api import solve, validate_inputs
from .backends import BACKENDS, DEFAULT_BACKEND
from .errors import InputError, XbarError
from .spec import Crossbar

__all__ = ["main"]


def _parse_size(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(
            f"size must look like 32x64 (rows x columns), got {text!r}"
        ) from None
    if rows < 1 or cols < 1:
        raise click.BadParameter(f"size must be at least 1x1, got {text!r}")
    return rows, cols


def _load_inputs(v_in: str, n_rows: int) -> np.ndarray:
    """Parse ``--v-in``: a number (same voltage on every row) or a .npy/.json/.txt file.

    The file must hold exactly M = ``n_rows`` real values (volts); anything else is a
    :class:`click.BadParameter` naming the file and the problem. A .npy file's header
    is checked before its data is read, so a file declaring a huge array costs nothing.
    """
    try:
        return np.full(n_rows, float(v_in))
    except ValueError:
        pass
    path = Path(v_in)
    if not path.is_file():
        raise click.BadParameter(
            f"--v-in is neither a number of volts nor an existing file: {short_repr(v_in)}"
        )
    try:
        if path.suffix == ".npy":
            values = _load_npy(path, n_rows)
        elif path.suffix == ".json":
            values = load_json(path.read_bytes(), "the content", error=InputError)
        else:
            with warnings.catch_warnings():
                # An empty file is reported below by its shape, not by NumPy's warning.
                warnings.simplefilter("ignore", UserWarning)
                values = np.loadtxt(path, dtype=np.float64, ndmin=1)
        values = as_real_array("the values", values, error=InputError, unit="V")
    except InputError as exc:
        raise click.BadParameter(f"--v-in file {v_in}: cannot read {n_rows} volts: "
                                 f"{exc}") from None
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"--v-in file {v_in}: cannot read {n_rows} volts: "
                                 f"{short_repr(str(exc))}") from None
    if values.shape != (n_rows,):
        raise click.BadParameter(
            f"--v-in file {v_in} must hold exactly {n_rows} values (one per row), "
            f"got an array of shape {values.shape}"
        )
    return values


def _load_npy(path: Path, n_rows: int) -> np.ndarray:
    """Read a .npy file of ``n_rows`` values, refusing any other declared shape first."""
    from numpy.lib import format as npy

    with open(path, "rb") as handle:
        version = npy.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, _ = read(handle)
    if tuple(shape) != (n_rows,):
        raise click.BadParameter(f"--v-in file {path} must hold exactly {n_rows} values (one "
                                 f"per row), got an array of shape {tuple(shape)}")
    return np.load(path, allow_pickle=False)


def _positive_seconds(ctx: click.Context, param: click.Parameter, value: float | None
                      ) -> float | None:
    """Click callback: a timeout must be a finite number of seconds > 0."""
    if value is None:
        return None
    try:
        return check_real(f"--{param.name}", value, 0.0, error=InputError, unit="s",
                          lo_open=True)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


def _finite_tolerance(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """Click callback: a relative tolerance must be a finite number >= 0."""
    try:
        return check_real(f"--{param.name}", value, 0.0, error=InputError)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


_json_safe = json_safe  # the former private name


def _write(path: str, what: str, write: object) -> None:
    """Run ``write(path)``, turning an OS error into a message naming ``what``."""
    try:
        write(path)  # type: ignore[operator]
    except OSError as exc:
        raise click.ClickException(f"cannot write {what} to {path}: {exc}") from None


_OPTION_NAMES = {"g_min": "--g-off", "g_max": "--g-on"}
"""Deprecated option parameters and the option that replaced them (named in messages)."""


def _conductance_range(g_off: float, g_on: float, g_min: float | None, g_max: float | None
                       ) -> tuple[float, float]:
    """``--g-off``/``--g-on``, or their deprecated names ``--g-min``/``--g-max``."""
    return (resolve_alias(g_off, g_min, new="--g-off", old="--g-min", new_param="g_off"),
            resolve_alias(g_on, g_max, new="--g-on", old="--g-max", new_param="g_on"))


def _build_spec(spec_path: str | None, random_size: str | None, seed: int, r_row: float,
                r_col: float, r_driver: float, r_sense: float, g_off: float, g_on: float,
                density: float | None, preset: str | None = None) -> Crossbar:
    if (spec_path is None) == (random_size is None):
        raise click.UsageError("give either a SPEC file or --random MxN (exactly one of them)")
    if spec_path is not None:
        if preset is not None:
            raise click.UsageError("--preset applies to --random arrays, not to a SPEC file")
        return Crossbar.load(spec_path)
    rows, cols = _parse_size(random_size)  # type: ignore[arg-type]
    if preset is not None:
        from .presets import get_preset

        chosen = get_preset(preset)
        explicit = _explicit_options("r_row", "r_col", "r_driver", "r_sense", "g_off", "g_on",
                                     "g_min", "g_max")
        if explicit:
            raise click.UsageError(
                f"--preset {preset} sets the wires and conductances; it conflicts with "
                f"{', '.join(explicit)} (drop those options, or --preset)")
        return chosen.crossbar(rows, cols, density=density, seed=seed)
    return Crossbar.random(rows, cols, r_row=r_row, r_col=r_col, r_driver=r_driver,
                           r_sense=r_sense, g_off=g_off, g_on=g_on, density=density, seed=seed)


def _explicit_options(*names: str) -> list[str]:
    """The options among ``names`` that the command line set (not left at their default),
    by their current option names."""
    from ._cli_common import explicit_options

    shown = [_OPTION_NAMES.get(name, f"--{name.replace('_', '-')}")
             for name in explicit_options(*names)]
    return list(dict.fromkeys(shown))


def _preset_inputs(v_in: str, preset: str | None) -> str:
    """``--v-in``, or the preset's read voltage when a preset is used and --v-in is not
    given (said on standard error)."""
    if preset is None or _explicit_options("v_in"):
        return v_in
    from .presets import get_preset

    volts = get_preset(preset).v_read
    log.info("--preset %s: inputs at its read voltage %s (set --v-in to change)", preset,
             format_si(volts, "V"))
    return repr(volts)


def _spec_options(func):
    options = [
        click.argument("spec", required=False, type=click.Path(exists=True, dir_okay=False)),
        click.option("--random", "random_size", metavar="MxN",
                     help="Generate a seeded random array of this size instead of reading SPEC."),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
                     help="Seed of the random array."),
        click.option("--r-row", default=1.0, show_default=True,
                     help="Row segment resistance (ohm)."),
        click.option("--r-col", default=1.0, show_default=True,
                     help="Column segment resistance (ohm)."),
        click.option("--r-driver", default=0.0, show_default=True,
                     help="Driver output resistance (ohm)."),
        click.option("--r-sense", default=0.0, show_default=True,
                     help="Sense resistance to the virtual ground (ohm)."),
        click.option("--g-off", default=1e-6, show_default=True,
                     help="OFF (lowest) conductance (S)."),
        click.option("--g-on", default=1e-4, show_default=True,
                     help="ON (highest) conductance (S)."),
        deprecated_alias("--g-min", "g_min", type=float),
        deprecated_alias("--g-max", "g_max", type=float),
        click.option("--density", type=float, default=None,
                     help="Binary array: probability of an ON cell "
                          "(else uniform in [g-off, g-on])."),
        click.option("--v-in", default="0.2", show_default=True,
                     help="Input volts on every row, or a .npy/.json/.txt file of M values."),
        click.option("--preset", default=None, metavar="NAME",
                     help="With --random: wires and ON/OFF conductances of a cited preset "
                          "(aihwkit_ir_drop, neurosim_rram_40nm, rram_10k_ratio10), inputs at "
                          "its read voltage unless --v-in is given; refuses --r-*/--g-*."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


LAZY_COMMANDS: dict[str, str] = {
    "map": "xbar_circuit.mapping.cli:map_command",
    "calibrate": "xbar_circuit.tables.cli:calibrate_command",
    "plot": "xbar_circuit.tables.cli:plot_command",
    "export-neurosim": "xbar_circuit.neurosim_cli:neurosim_command",
}
"""Sub-commands imported only when invoked (they pull in heavier dependencies)."""


class _LazyGroup(click.Group):
    """A click group whose heavier sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib

            module_name, attribute = LAZY_COMMANDS[cmd_name].split(":")
            try:
                return getattr(importlib.import_module(module_name), attribute)
            except (ImportError, AttributeError) as exc:
                message = f"the '{cmd_name}' command is unavailable: {exc}"

                @click.command(cmd_name, help=message,
                               short_help="(unavailable: missing dependency)",
                               context_settings={"ignore_unknown_options": True,
                                                 "allow_extra_args": True})
                @common_options
                def unavailable(as_json: bool) -> None:
                    raise click.ClickException(message)

                return unavailable
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xbar-circuit")
@group_options
def main() -> None:
    """xbar-circuit: circuit-level crossbar solver validated against ngspice.

    \b
    Conventions shared by every command:
      -o/--output FILE     one output file; commands writing several take --out-dir DIR
      --json               the result as one JSON document on standard output
      -q/--quiet           no progress or information lines on standard error
      -v/--verbose         debug diagnostics on standard error
      --g-off/--g-on       device OFF/ON conductances in siemens
    """


@main.command()
@_spec_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the deck to this file instead of standard output.")
@click.option("--save-spec", type=click.Path(dir_okay=False), default=None,
              help="Also write the (generated) spec as JSON.")
@common_options
def netlist(spec, random_size, seed, r_row, r_col, r_driver, r_sense, g_off, g_on, g_min,
            g_max, density, v_in, preset, output, save_spec, as_json) -> None:
    """Write the SPICE deck of a crossbar spec (JSON) for one input vector.

    With --json: {"output", "deck" (the text when no -o), "rows", "cols", "spec"}.
    """
    from .netlists import write_deck

    g_off, g_on = _conductance_range(g_off, g_on, g_min, g_max)
    try:
        xbar = _build_spec(spec, random_size, seed, r_row, r_col, r_driver, r_sense, g_off,
                           g_on, density, preset)
        volts = validate_inputs(xbar, _load_inputs(_preset_inputs(v_in, preset),
                                                   xbar.n_rows))[0][0]
        deck = write_deck(xbar, volts)
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    if save_spec:
        _write(save_spec, "the spec", xbar.save)
    if output:
        _write(output, "the deck", lambda path: Path(path).write_text(deck))
        log.info("wrote %s (%dx%d crossbar)", output, xbar.n_rows, xbar.n_cols)
    if as_json:
        emit_json({"output": output, "deck": None if output else deck, "rows": xbar.n_rows,
                   "cols": xbar.n_cols, "spec": save_spec})
    elif not output:
        click.echo(deck, nl=False)


def _ohms(value: float | np.ndarray) -> str:
    """A scalar wire resistance, or the range of a per-segment array."""
    if np.ndim(value) == 0:
        return f"{float(value):g} ohm"
    return f"[{np.min(value):g}, {np.max(value):g}] ohm per segment"


def _format_currents(currents: np.ndarray, unit: str = "A") -> str:
    """Values with 4 significant digits and an SI prefix; the ends of a long vector."""
    return format_si_list(currents, unit)


DECK_SUFFIXES = (".cir", ".sp", ".spice", ".net", ".ckt", ".deck")
"""File suffixes ``xbar solve`` reads as SPICE decks (with read_deck) instead of specs."""

SHOWN_NODES = 20
"""Node voltages and source currents ``xbar solve DECK`` prints (--json prints all)."""


def _solve_deck(path: str, compare: str | None, rtol: float, timeout: float | None,
                mode: str, as_json: bool) -> None:
    """``xbar solve DECK``: read_deck's operating point, optionally against ngspice."""
    from .netlists import ngspice_operating_point, read_deck

    if compare not in (None, "ngspice", "read_deck,ngspice", "ngspice,read_deck"):
        raise click.BadParameter(f"a deck can only be compared with ngspice (--compare "
                                 f"ngspice), got {compare!r}")
    try:
        start = time.perf_counter()
        netlist = read_deck(path)
        ours = netlist.operating_point()
        seconds = time.perf_counter() - start
        theirs = None
        if compare is not None:
            start = time.perf_counter()
            with stage(f"ngspice: solving {Path(path).name} "
                       f"({len(netlist.elements)} elements)"):
                theirs = ngspice_operating_point(netlist, mode=mode, timeout=timeout)
            spice_seconds = time.perf_counter() - start
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    report: dict = {"deck": str(path), "title": netlist.title,
                    "elements": len(netlist.elements), "nodes": len(netlist.nodes),
                    "seconds": seconds, "newton_iterations": ours.iterations,
                    "kcl_residual": ours.residual,
                    "voltages": ours.voltages, "currents": ours.currents}
    status = 0
    if theirs is not None:
        missing = sorted(set(ours.voltages) ^ set(theirs.voltages)
                         | set(ours.currents) ^ set(theirs.currents))
        dv = max((abs(ours.voltages[k] - v) for k, v in theirs.voltages.items()
                  if k in ours.voltages), default=0.0)
        scale = max((abs(v) for v in theirs.currents.values()), default=0.0)
        di = max((abs(ours.currents[k] - v) for k, v in theirs.currents.items()
                  if k in ours.currents), default=0.0)
        rel = di / scale if scale > 0 else di
        agree = not missing and rel <= rtol and dv <= rtol * max(
            [abs(v) for v in theirs.voltages.values()] + [1e-300])
        report["comparison"] = {"ngspice_seconds": spice_seconds,
                                "max_node_voltage_difference": dv,
                                "max_relative_current_difference": rel,
                                "names_in_one_only": missing, "rtol": rtol, "agree": agree}
        status = 0 if agree else 3
    if as_json:
        emit_json(report)
        sys.exit(status)
    click.echo(f"{path}: {len(netlist.elements)} elements, {len(netlist.nodes)} nodes, "
               f"solved by read_deck in {seconds:.3f} s"
               + (f" ({ours.iterations} Newton iterations)" if ours.iterations else "")
               + f"; largest KCL residual {ours.residual:.2e} A")
    shown = list(ours.voltages.items())
    for name, value in shown[:SHOWN_NODES]:
        click.echo(f"  v({name}) = {format_si(value, 'V', 6)}")
    if len(shown) > SHOWN_NODES:
        click.echo(f"  ... {len(shown) - SHOWN_NODES} more node voltages (--json prints all)")
    currents = list(ours.currents.items())
    for name, value in currents[:SHOWN_NODES]:
        click.echo(f"  i({name}) = {format_si(value, 'A', 6)}")
    if len(currents) > SHOWN_NODES:
        click.echo(f"  ... {len(currents) - SHOWN_NODES} more currents (--json prints all)")
    if theirs is not None:
        cmp = report["comparison"]
        click.echo(f"\nread_deck vs ngspice ({cmp['ngspice_seconds']:.2f} s): max node-voltage "
                   f"difference {cmp['max_node_voltage_difference']:.3e} V, max source-current "
                   f"difference {cmp['max_relative_current_difference']:.3e} (relative to the "
                   f"largest) -> {'AGREE' if cmp['agree'] else 'DISAGREE'} (rtol {rtol:g})"
                   + (f"; only in one: {', '.join(cmp['names_in_one_only'][:10])}"
                      if cmp["names_in_one_only"] else ""))
    sys.exit(status)


SLOW_CELLS = 256 * 256
"""Arrays from this many cells on show a stage indicator for every backend (ngspice
always shows one)."""


@main.command(name="solve")
@_spec_options
@click.option("--backend", type=click.Choice(sorted(BACKENDS)), default=DEFAULT_BACKEND,
              show_default=True, help="Solver backend.")
@click.option("--compare", default=None, metavar="A,B",
              help="Solve with two backends (e.g. nodal,ngspice) and print their agreement.")
@click.option("--rtol", default=1e-9, show_default=True, callback=_finite_tolerance,
              help="With --compare: relative tolerance on column currents; exit 3 if exceeded.")
@click.option("--timeout", type=float, default=None, callback=_positive_seconds,
              help="ngspice timeout in seconds (finite, > 0).")
@click.option("--mode", type=click.Choice(["auto", "subprocess", "shared"]), default="auto",
              show_default=True,
              help="How ngspice runs: its executable (subprocess) or libngspice (shared).")
@click.option("--save-spec", type=click.Path(dir_okay=False), default=None,
              help="Also write the (generated) spec as JSON.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the solution (of the first backend) to this NetCDF file; "
                   "read it with CrossbarSolution.load. Needs the [tables] extra.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw its row/column IR-drop and cell-current maps to this image "
                   "(.png, .pdf or .svg). Needs the [plot] extra.")
@common_options
def solve_command(spec, random_size, seed, r_row, r_col, r_driver, r_sense, g_off, g_on,
                  g_min, g_max, density, v_in, preset, backend, compare, rtol, timeout, mode,
                  save_spec, save_path, plot_path, as_json) -> None:
    """Solve a crossbar and print its column currents and nonideality factor (NF).

    SPEC may also be a SPICE deck (.cir, .sp, .spice, .net, .ckt): its DC operating
    point is solved by read_deck; --compare ngspice checks it against ngspice.
    """
    if spec is not None and Path(spec).suffix.lower() in DECK_SUFFIXES:
        _solve_deck(spec, compare, rtol, timeout, mode, as_json)
        return
    g_off, g_on = _conductance_range(g_off, g_on, g_min, g_max)
    try:
        xbar = _build_spec(spec, random_size, seed, r_row, r_col, r_driver, r_sense, g_off,
                           g_on, density, preset)
        volts = _load_inputs(_preset_inputs(v_in, preset), xbar.n_rows)
        if save_spec:
            _write(save_spec, "the spec", xbar.save)
        names = [backend] if compare is None else [b.strip() for b in compare.split(",")]
        if compare is not None and len(names) != 2:
            raise click.BadParameter(f"--compare takes two backend names, got {compare!r}")
        results = {}
        m, n = xbar.shape
        for name in names:
            options = {"timeout": timeout} if name == "ngspice" and timeout is not None else {}
            if name == "ngspice":
                options["mode"] = mode
            shown = state().progress and (name == "ngspice" or m * n >= SLOW_CELLS)
            start = time.perf_counter()
            with stage(f"{name}: solving {m}x{n}", enabled=shown):
                sol = solve(xbar, volts, backend=name, **options)
            results[name] = (sol, time.perf_counter() - start)
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    kept = results[names[0]][0]
    try:
        if save_path:
            _write(save_path, "the solution", kept.save)
        if plot_path:
            _write(plot_path, "the plot", kept.plot)
    except (XbarError, ValueError) as exc:  # ValueError: an image format matplotlib lacks
        raise click.ClickException(str(exc)) from None

    report: dict = {"shape": [m, n], "r_row": np.asarray(xbar.r_row).tolist(),
                    "r_col": np.asarray(xbar.r_col).tolist(),
                    "r_driver": xbar.r_driver, "r_sense": xbar.r_sense, "backends": {}}
    for name, (sol, seconds) in results.items():
        report["backends"][name] = {
            "seconds": seconds, "nf": sol.nf, "nf_aggregate": sol.nf_aggregate,
            "column_currents": sol.column_currents.tolist(), "method": sol.info.get("method"),
        }
    status = 0
    if compare is not None:
        a, b = (results[name][0] for name in names)
        scale = np.maximum(np.abs(a.column_currents), np.abs(b.column_currents))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(scale > 0, np.abs(a.column_currents - b.column_currents) / scale, 0.0)
        max_rel = float(rel.max())
        max_dv = float(max(np.abs(a.row_voltages - b.row_voltages).max(),
                           np.abs(a.column_voltages - b.column_voltages).max()))
        report["comparison"] = {"max_relative_difference": max_rel,
                                "max_node_voltage_difference": max_dv, "rtol": rtol,
                                "agree": max_rel <= rtol}
        status = 0 if max_rel <= rtol else 3

    if as_json:
        emit_json(report)
        sys.exit(status)
    g = xbar.conductance
    click.echo(f"crossbar {m}x{n}: r_row={_ohms(xbar.r_row)}, r_col={_ohms(xbar.r_col)}, "
               f"r_driver={xbar.r_driver:g} ohm, r_sense={xbar.r_sense:g} ohm, "
               f"G in [{format_si(g.min(), 'S')}, {format_si(g.max(), 'S')}], "
               f"inputs in [{format_si(volts.min(), 'V')}, {format_si(volts.max(), 'V')}]")
    for name, (sol, seconds) in results.items():
        click.echo(f"\n[{name}] {sol.info.get('method', '')}  ({seconds:.3f} s)")
        click.echo(f"  column currents: {_format_currents(sol.column_currents)}")
        click.echo(f"  ideal V·G      : {_format_currents(sol.ideal_currents)}")
        click.echo(f"  NF (mean column (I_ideal - I)/I_ideal): {sol.nf:.4g}")
        click.echo(f"  NF aggregate (Σ(I_ideal - I)/Σ I_ideal): {sol.nf_aggregate:.4g}")
        if sol.tia_output_voltages is not None:
            click.echo(f"  TIA outputs    : {_format_currents(sol.tia_output_voltages, 'V')}")
        if sol.sense_voltages is not None:
            click.echo(f"  sense voltages : {_format_currents(sol.sense_voltages, 'V')}")
        if sol.newton_iterations is not None:
            click.echo(f"  Newton iterations: {sol.newton_iterations}")
    if n > 8:
        click.echo(f"\n({n} columns; --json prints every current at full precision)")
    if compare is not None:
        cmp = report["comparison"]
        verdict = "AGREE" if cmp["agree"] else "DISAGREE"
        click.echo(f"\n{names[0]} vs {names[1]}: max relative difference of column currents "
                   f"{cmp['max_relative_difference']:.3e}, max node-voltage difference "
                   f"{cmp['max_node_voltage_difference']:.3e} V -> {verdict} (rtol {rtol:g})")
    sys.exit(status)


def _check_row(row) -> dict:
    """One validation check as JSON (without the arrays of its parity plot)."""
    return {"family": row.family, "case": row.case, "size": row.size, "backend": row.backend,
            "model": row.model, "current_error": row.current_error,
            "voltage_error": row.voltage_error, "nf": row.nf, "checks": dict(row.checks),
            "passed": bool(row.passed), "note": row.note}


@main.command()
@click.argument("backends", nargs=-1)
@click.option("--spec", "spec_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Validate your own array: ngspice live vs the backends, plus identities.")
@click.option("--v-in", default="0.2", show_default=True,
              help="With --spec: volts on every row, or a .npy/.json/.txt file of M values.")
@click.option("--quick", is_flag=True, help="Only the corpus cases up to 32x32.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write the Markdown report to this file (and parity plots beside it, "
                   "in figures/).")
@click.option("--timeout", type=float, default=None, callback=_positive_seconds,
              help="With --spec: ngspice timeout (s, finite, > 0).")
@click.option("--mode", type=click.Choice(["auto", "subprocess", "shared"]), default="auto",
              show_default=True,
              help="How ngspice runs: its executable (subprocess) or libngspice (shared).")
@common_options
def validate(backends, spec_path, v_in, quick, report, timeout, mode, as_json) -> None:
    """Check backends against the ngspice corpus, closed forms and identities.

    BACKENDS default to nodal and reference, plus ngspice when it is installed (it is
    then re-run live on every committed deck). Exits 1 when any check fails.
    """
    import shutil

    from .validation import format_table, run_validation, validate_spec, write_report

    names = list(backends) or ["nodal", "reference"] + (
        ["ngspice"] if shutil.which("ngspice") and spec_path is None else [])
    unknown = [b for b in names if b not in BACKENDS]
    if unknown:
        raise click.BadParameter(f"unknown backend(s) {unknown}; choose from {list(BACKENDS)}")
    progress = state().progress
    try:
        if spec_path is not None:
            xbar = Crossbar.load(spec_path)
            rows = validate_spec(xbar, _load_inputs(v_in, xbar.n_rows),
                                 [b for b in names if b != "ngspice"] or ["nodal", "reference"],
                                 timeout=timeout, mode=mode, progress=progress)
        else:
            rows = run_validation(names, quick=quick, mode=mode, progress=progress)
    except XbarError as exc:
        raise click.ClickException(str(exc)) from None
    failed = [r for r in rows if not r.passed]
    written: list[str] = []
    if report:
        argv = " ".join(sys.argv[1:])
        path = Path(report)
        written = [str(p) for p in write_report(rows, path, path.parent / "figures",
                                                f"xbar {argv}")]
    if as_json:
        emit_json({"backends": names, "checks": [_check_row(r) for r in rows],
                   "n_checks": len(rows), "n_failed": len(failed), "passed": not failed,
                   "report": written})
        sys.exit(1 if failed else 0)
    click.echo(format_table(rows))
    click.echo(f"\n{len(rows) - len(failed)} of {len(rows)} checks pass"
               + (f"; {len(failed)} FAIL" if failed else ""))
    for item in written:
        click.echo(f"wrote {item}")
    sys.exit(1 if failed else 0)


@main.command()
@common_options
def info(as_json: bool) -> None:
    """Print the version, the backends and whether ngspice can be found."""
    import shutil

    exe = shutil.which("ngspice")
    modes = _ngspice_info()
    if as_json:
        emit_json({"version": __version__, "backends": list(BACKENDS),
                   "default_backend": DEFAULT_BACKEND,
                   "ngspice": {"executable": exe, "available": exe is not None or any(
                       m["available"] for m in modes.values()), "modes": modes}})
        return
    click.echo(f"xbar-circuit {__version__}")
    click.echo(f"backends: {', '.join(BACKENDS)} (default {DEFAULT_BACKEND})")
    click.echo(f"ngspice executable: {exe or 'not found (apt-get install ngspice)'}")
    for mode, entry in modes.items():
        if not entry["available"]:
            click.echo(f"ngspice {mode} mode: unavailable ({entry['reason']})")
            continue
        note = "" if entry["klu"] else (" (no KLU: arrays above 64x64 take minutes; "
                                        "scripts/install_system_deps.sh installs ngspice "
                                        "with KLU)")
        click.echo(f"ngspice {mode} mode: {entry['version']}, matrix solver "
                   f"{entry['solver']}{note}")


def _ngspice_info() -> dict[str, dict]:
    """ngspice's version, matrix solver and the modes that can run (``xbar info``)."""
    from .netlists import find_libngspice, ngspice_capabilities, shared_capabilities

    modes: dict[str, dict] = {}
    for mode, probe in (("subprocess", ngspice_capabilities), ("shared", shared_capabilities)):
        if mode == "shared" and find_libngspice() is None:
            modes[mode] = {"available": False, "reason": "libngspice not found; apt-get "
                                                         "install libngspice0-dev"}
            continue
        try:
            caps = probe()
        except XbarError as exc:
            modes[mode] = {"available": False, "reason": str(exc)}
            continue
        modes[mode] = {"available": True, "version": caps.version, "major": caps.major,
                       "klu": bool(caps.klu), "solver": caps.solver}
    return modes


if __name__ == "__main__":  # pragma: no cover
    main()
