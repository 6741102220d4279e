"""What every ``xbar`` command shares: options, logging, progress, JSON and number format.

Conventions (documented in docs/getting-started.md, "Command-line conventions"):

- ``-o/--output`` always names one output FILE; a command writing several files takes
  ``--out-dir DIRECTORY`` (no short form).
- ``--json``: the command's result as one JSON document on standard output, nothing else
  there. Floats keep full precision; NaN and infinity become ``null``.
- ``-q/--quiet``: no progress bars and no information lines on standard error; results,
  warnings and errors are still printed.
- ``-v/--verbose``: debug diagnostics on standard error.
- Diagnostics go through :mod:`logging` (loggers under ``xbar_circuit``, ``netlists`` and
  ``validation``), shown on standard error as ``xbar: message``; Python warnings are
  shown once per place they come from, with a count of the repeats at the end.
- Progress bars and stage indicators go to standard error only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import numpy as np

__all__ = ["CliState", "LOGGER_NAMES", "cli_session", "common_options", "emit_json",
           "explicit_options", "format_si", "format_si_list", "group_options", "json_safe",
           "log", "progress_bar", "refuse_short_o", "resolve_alias", "stage", "state"]

LOGGER_NAMES = ("xbar_circuit", "netlists", "validation")
"""Loggers whose records the ``xbar`` command shows on standard error."""

log = logging.getLogger("xbar_circuit.cli")
"""The logger of the command line's own diagnostics."""

_STATE_KEY = "xbar_circuit.cli.state"
_GROUP_KEY = "xbar_circuit.cli.group_flags"

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class CliState:
    """The output flags of the running command."""

    as_json: bool = False
    quiet: bool = False
    verbose: int = 0

    @property
    def progress(self) -> bool:
        """Whether progress bars and stage indicators are shown on standard error.

        Not with --quiet; with --json only when standard error is a terminal (a program
        reading the JSON document gets a clean standard error too).
        """
        return not self.quiet and (not self.as_json or _stderr_is_terminal())


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def state() -> CliState:
    """The flags of the command being run (defaults outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return CliState()
    found = ctx.meta.get(_STATE_KEY)
    return found if isinstance(found, CliState) else CliState()


# ----------------------------------------------------------------------------- logging
class _EchoHandler(logging.Handler):
    """Writes records to the standard error of the moment (click's, so tests see it),
    clearing any progress bar first (tqdm redraws it below the line)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            text = self.format(record)
            with tqdm.external_write_mode(file=sys.stderr):
                click.echo(text, err=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.levelno <= logging.DEBUG:
            message += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.ERROR:
            return f"xbar: error: {message}"
        if record.levelno >= logging.WARNING:
            return f"xbar: warning: {message}"
        return f"xbar: {message}"


class _WarningsOnce:
    """``warnings.showwarning`` replacement: each warning shown once per place of origin
    (category, file, line), repeats counted and summarised when the command ends."""

    def __init__(self) -> None:
        self.repeats: dict[tuple[type, str, int], int] = {}

    def show(self, message: Warning | str, category: type[Warning], filename: str,
             lineno: int, file: Any = None, line: str | None = None) -> None:
        key = (category, filename, lineno)
        if key in self.repeats:
            self.repeats[key] += 1
            return
        self.repeats[key] = 0
        log.warning("%s: %s", category.__name__, message)

    def summarise(self) -> None:
        for (category, _, _), count in self.repeats.items():
            if count:
                log.warning("%s: %d more like the above not shown", category.__name__, count)


@contextlib.contextmanager
def cli_session(quiet: bool = False, verbose: int = 0) -> Iterator[None]:
    """Show the package's log records and Python warnings on standard error for one command.

    INFO by default, WARNING with ``quiet``, DEBUG with ``verbose`` (which wins). The
    previous logger levels and handlers, and the warning filters, are restored after.
    """
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    handler = _EchoHandler(level)
    handler.setFormatter(_Formatter())
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
        lg.addHandler(handler)
    once = _WarningsOnce()
    try:
        with warnings.catch_warnings():
            # Shown through `once` (one line per origin), not by Python's per-text registry.
            warnings.filterwarnings("always", category=UserWarning)
            warnings.showwarning = once.show
            try:
                yield
            finally:
                once.summarise()
    finally:
        for lg, old in saved:
            lg.removeHandler(handler)
            lg.setLevel(old)


# ----------------------------------------------------------------------------- options
def _store_group_flag(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault(_GROUP_KEY, {})[param.name] = value
    return value


def group_options(func: F) -> F:
    """``-q/--quiet`` and ``-v/--verbose`` on the group (``xbar -v solve ...``)."""
    func = click.option("-v", "--verbose", count=True, expose_value=False,
                        callback=_store_group_flag,
                        help="Debug diagnostics on standard error (every command).")(func)
    func = click.option("-q", "--quiet", is_flag=True, expose_value=False,
                        callback=_store_group_flag,
                        help="No progress bars or information lines (every command).")(func)
    return func


def common_options(func: F) -> F:
    """Add ``--json``, ``-q/--quiet`` and ``-v/--verbose`` to a command.

    The command receives ``as_json``; quiet and verbose set up :func:`cli_session` around
    it and are available through :func:`state`.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, verbose: int, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        group = ctx.meta.get(_GROUP_KEY, {})
        quiet = bool(quiet or group.get("quiet"))
        verbose = int(verbose) + int(group.get("verbose") or 0)
        ctx.meta[_STATE_KEY] = CliState(bool(kwargs.get("as_json")), quiet, verbose)
        with cli_session(quiet, verbose):
            return func(*args, **kwargs)

    options = [
        click.option("--json", "as_json", is_flag=True,
                     help="Print the result as one JSON document on standard output."),
        click.option("-q", "--quiet", is_flag=True,
                     help="No progress bars or information lines on standard error "
                          "(results, warnings and errors are still shown)."),
        click.option("-v", "--verbose", count=True,
                     help="Debug diagnostics on standard error."),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def explicit_options(*names: str) -> list[str]:
    """The parameters among ``names`` that the command line set (not left at default)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return []
    return [name for name in names
            if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]


def deprecated_alias(old: str, name: str, **kwargs: Any) -> Callable[[F], F]:
    """A hidden option ``old`` (value None unless given), resolved by :func:`resolve_alias`."""
    return click.option(old, name, hidden=True, default=None, **kwargs)


def resolve_alias(new_value: Any, old_value: Any, *, new: str, old: str,
                  new_param: str) -> Any:
    """The value of an option given under its new name or its deprecated ``old`` name.

    The old name still works and says, on standard error, which option replaces it;
    both names at once are a usage error.
    """
    if old_value is None:
        return new_value
    if explicit_options(new_param):
        raise click.UsageError(f"{old} is the former name of {new}: give only {new}")
    log.warning("%s is deprecated, use %s (same meaning)", old, new)
    return old_value


def refuse_short_o(command: str) -> Callable[[F], F]:
    """A hidden ``-o`` that explains: this command writes several files (--out-dir)."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise click.UsageError(
                f"xbar {command} writes several files: give their folder with --out-dir "
                f"{value} (-o/--output always names a single output file)", ctx=ctx)

    return click.option("-o", "refused_o", hidden=True, default=None, expose_value=False,
                        metavar="DIR", callback=refuse)


# ----------------------------------------------------------------------------- output
def json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python ones and NaN/inf as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def emit_json(value: Any) -> None:
    """Print ``value`` as one strict JSON document on standard output."""
    click.echo(json.dumps(json_safe(value), indent=1, allow_nan=False))


_PREFIXES = {-18: "a", -15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k",
             6: "M", 9: "G"}


def format_si(value: float, unit: str, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits and an SI prefix: ``12.35 µA``."""
    value = float(value)
    if not math.isfinite(value):
        return f"{value} {unit}".rstrip()
    if value == 0:
        return f"0 {unit}".rstrip()
    exponent = int(min(9, max(-18, 3 * math.floor(math.log10(abs(value)) / 3))))
    text = f"{value / 10.0 ** exponent:#.{digits}g}"
    if abs(float(text)) >= 1000 and exponent < 9:  # rounding reached the next prefix
        exponent += 3
        text = f"{value / 10.0 ** exponent:#.{digits}g}"
    text = text.rstrip(".") if "e" not in text else text
    return f"{text} {_PREFIXES[exponent]}{unit}".rstrip()


def format_si_list(values: Any, unit: str, digits: int = 4, edge: int = 4) -> str:
    """A short list of values (the first and last ``edge`` of a long one)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size <= 2 * edge + 1:
        return "[" + ", ".join(format_si(v, unit, digits) for v in flat) + "]"
    head = ", ".join(format_si(v, unit, digits) for v in flat[:edge])
    tail = ", ".join(format_si(v, unit, digits) for v in flat[-edge:])
    return f"[{head}, ... {flat.size - 2 * edge} more ..., {tail}]"


# ----------------------------------------------------------------------------- progress
def progress_bar(total: int, description: str, unit: str = "step",
                 enabled: bool | None = None) -> Any:
    """A tqdm bar on standard error, hidden with --quiet (or ``enabled=False``)."""
    from tqdm import tqdm

    shown = state().progress if enabled is None else enabled
    return tqdm(total=total, desc=description, unit=unit, disable=not shown,
                file=sys.stderr, dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def stage(description: str, enabled: bool | None = None) -> Iterator[None]:
    """Say on standard error that a possibly long step runs, with its elapsed time.

    On a terminal the line is redrawn every half second (``ngspice: solving 64x64 ...
    3.5 s``); otherwise one line when it starts and one when it ends. Hidden with --quiet.
    """
    shown = state().progress if enabled is None else enabled
    if not shown:
        yield
        return
    stream = sys.stderr
    start = time.perf_counter()
    live = bool(getattr(stream, "isatty", lambda: False)())
    done = threading.Event()

    def redraw() -> None:
        while not done.wait(0.5):
            stream.write(f"\r{description} ... {time.perf_counter() - start:.1f} s")
            stream.flush()

    if live:
        stream.write(f"{description} ...")
        stream.flush()
        ticker = threading.Thread(target=redraw, daemon=True)
        ticker.start()
    else:
        click.echo(f"{description} ...", err=True)
    ok = False
    try:
        yield
        ok = True
    finally:
        done.set()
        if live:
            ticker.join()
            stream.write("\r")
        end = "done" if ok else "stopped"
        click.echo(f"{description}: {end} in {time.perf_counter() - start:.2f} s", err=True)
