"""Run a SPICE deck through ngspice and read every value at full double precision.

Two modes:

``"subprocess"``
    ``ngspice -b -r out.raw deck.cir`` in a fresh temporary directory; the binary
    rawfile is parsed with NumPy (:mod:`xbar_circuit.netlists.rawfile`). The
    7-significant-digit ``.op`` table on stdout is never read.
``"shared"``
    libngspice through PySpice 1.5's ``NgSpiceShared`` (imported only here, lazily).
    The deck *text* goes to ``load_circuit``; values are read as float64 straight
    from the library's vectors; after each run the circuit is removed (``remcirc``)
    and the results destroyed (``destroy all``) so memory stays flat. PySpice's own
    subprocess mode and its ``simulator()`` path are not used at all.

``"auto"`` picks subprocess when the ``ngspice`` executable is on ``PATH``, else
shared mode when libngspice can be loaded, else raises
:class:`~xbar_circuit.errors.NgspiceNotFoundError`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import dataclasses
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator

from xbar_circuit.errors import (
    BackendError,
    InputError,
    NgspiceError,
    NgspiceNotFoundError,
    NgspiceTimeoutError,
)

from .deck import check_deck
from .rawfile import normalize_name, op_values, read_rawfile

__all__ = [
    "NgspiceCapabilities",
    "NgspiceOutputError",
    "ngspice_capabilities",
    "shared_capabilities",
    "capabilities",
    "solver_from_output",
    "COST_TABLE",
    "COST_TABLE_KLU",
    "COST_WARNING_CELLS",
    "COST_WARNING_CELLS_KLU",
    "INSTALL_HINT",
    "MODES",
    "NgspiceCostWarning",
    "RunResult",
    "estimate_seconds",
    "find_libngspice",
    "find_ngspice",
    "ngspice_version",
    "resolve_mode",
    "run_deck",
    "shared_circuit_count",
    "shared_plot_names",
    "warn_if_costly",
]

MODES = ("auto", "subprocess", "shared")

INSTALL_HINT = (
    "install it with `apt-get install ngspice libngspice0 libngspice0-dev` (Debian/Ubuntu), "
    "or put the ngspice executable on PATH / set NGSPICE_LIBRARY_PATH to libngspice.so"
)

_OUTPUT_LIMIT = 20_000  # characters of ngspice output kept in an exception

# Lines of ngspice output that mean the operating point is not a clean linear solve.
_FAILURE_PATTERNS = re.compile(
    r"^\s*error|singular matrix|gmin stepping|source stepping|simulation interrupted"
    r"|circuit not parsed|no such|unknown parameter|timestep too small",
    re.IGNORECASE | re.MULTILINE,
)


# ------------------------------------------------------------------- cost estimate
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


# ----------------------------------------------------------------- discovery
def find_ngspice() -> str | None:
    """Return the path of the ``ngspice`` executable on ``PATH``, or None."""
    return shutil.which("ngspice")


def find_libngspice() -> str | None:
    """Return a loadable libngspice path or name, or None.

    ``NGSPICE_LIBRARY_PATH`` wins when set (PySpice's own variable). Otherwise the
    unversioned ``libngspice.so`` (Debian package ``libngspice0-dev``) is preferred,
    then whatever :func:`ctypes.util.find_library` finds (e.g. ``libngspice.so.0``
    from ``libngspice0`` alone, which PySpice would not find by itself).
    """
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    candidates = [env] if env else []
    candidates.append("libngspice.so")
    found = ctypes.util.find_library("ngspice")
    if found:
        candidates.append(found)
    for candidate in candidates:
        try:
            ctypes.CDLL(candidate)
        except OSError:
            continue
        return candidate
    return None


_VERSION_CACHE: dict[str, str] = {}


def ngspice_version(executable: str | None = None) -> str:
    """Return ngspice's version line, e.g. ``"ngspice-39"``.

    Parameters
    ----------
    executable : str, optional
        Path of the executable; default :func:`find_ngspice`.

    Raises
    ------
    NgspiceNotFoundError
        If no executable is found.
    """
    exe = executable or find_ngspice()
    if exe is None:
        raise NgspiceNotFoundError(f"the ngspice executable is not on PATH; {INSTALL_HINT}")
    if exe not in _VERSION_CACHE:
        try:
            proc = subprocess.run(
                [exe, "--version"], capture_output=True, text=True, timeout=30,
                stdin=subprocess.DEVNULL, check=False,
            )
            text = proc.stdout + proc.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            text = f"unknown ({exc})"
        match = re.search(r"ngspice-\S+", text)
        lines = text.strip().splitlines()
        _VERSION_CACHE[exe] = match.group(0) if match else (lines[0] if lines else "unknown")
    return _VERSION_CACHE[exe]


class NgspiceOutputError(NgspiceError):
    """ngspice finished, but its output holds NaN or infinite values.

    A non-finite node voltage or branch current is never a valid operating point of
    a resistive network; the deck is kept and named, as for any failure.
    """


@dataclasses.dataclass(frozen=True)
class NgspiceCapabilities:
    """What the installed ngspice is and which sparse matrix solver it can use.

    Attributes
    ----------
    version : str
        Version tag, e.g. ``"ngspice-46"``.
    major : int or None
        Major version number (None when it cannot be read).
    klu : bool
        Whether ``.option klu`` selects the KLU solver (Debian's ngspice 39 is built
        without it; bookworm-backports' ngspice 46 has it).
    mode : str
        ``"subprocess"`` (the executable) or ``"shared"`` (libngspice).
    """

    version: str
    major: int | None
    klu: bool
    mode: str

    @property
    def solver(self) -> str:
        """Matrix solver a deck with ``.option klu`` gets: ``"KLU"`` or ``"Sparse 1.3"``."""
        return "KLU" if self.klu else "Sparse 1.3"


# A deck of one resistor asking for KLU. ngspice 40 and later report the solver they
# use ("Using KLU as Direct Linear Solver" / "Using SPARSE 1.3 ..."); ngspice 39 says
# nothing and ignores the option. The title must not contain the word being looked for.
_PROBE_DECK = "solver probe\nV1 a 0 1\nR1 a 0 1k\n.option klu\n.op\n.end\n"
_KLU_LINE = re.compile(r"using\s+klu", re.IGNORECASE)
_SPARSE_LINE = re.compile(r"using\s+sparse", re.IGNORECASE)
_CAPABILITIES: dict[tuple[str, str], NgspiceCapabilities] = {}
_CAPABILITIES_LOCK = threading.Lock()


def _major(version: str) -> int | None:
    match = re.search(r"ngspice-(\d+)", version)
    return int(match.group(1)) if match else None


def solver_from_output(output: str, default: str = "Sparse 1.3") -> str:
    """The matrix solver an ngspice run reports in its output, or ``default``.

    Examples
    --------
    >>> solver_from_output("Using KLU as Direct Linear Solver")
    'KLU'
    """
    if _KLU_LINE.search(output):
        return "KLU"
    if _SPARSE_LINE.search(output):
        return "Sparse 1.3"
    return default


def ngspice_capabilities(executable: str | None = None) -> NgspiceCapabilities:
    """Version and KLU support of the ``ngspice`` executable, probed once and cached.

    Parameters
    ----------
    executable : str, optional
        Path of the executable; default :func:`find_ngspice`.

    Returns
    -------
    NgspiceCapabilities

    Raises
    ------
    NgspiceNotFoundError
        If no executable is found.
    """
    exe = executable or find_ngspice()
    if exe is None:
        raise NgspiceNotFoundError(f"the ngspice executable is not on PATH; {INSTALL_HINT}")
    key = ("subprocess", exe)
    with _CAPABILITIES_LOCK:
        if key in _CAPABILITIES:
            return _CAPABILITIES[key]
    version = ngspice_version(exe)
    workdir = tempfile.mkdtemp(prefix="xbar-ngspice-probe-")
    try:
        with open(os.path.join(workdir, "probe.cir"), "w", encoding="utf-8") as handle:
            handle.write(_PROBE_DECK)
        proc = subprocess.run(
            [exe, "-b", "probe.cir"], cwd=workdir, capture_output=True, timeout=60,
            stdin=subprocess.DEVNULL, check=False, env=dict(os.environ, LC_ALL="C"),
        )
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        output = ""
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    found = NgspiceCapabilities(version, _major(version), bool(_KLU_LINE.search(output)),
                                "subprocess")
    with _CAPABILITIES_LOCK:
        _CAPABILITIES[key] = found
    return found


def shared_capabilities() -> NgspiceCapabilities:
    """Version and KLU support of the shared libngspice (loaded through PySpice), cached.

    Raises
    ------
    NgspiceNotFoundError
        If libngspice or PySpice cannot be loaded.
    """
    return _Shared.get().capabilities()


def capabilities(mode: str = "auto") -> NgspiceCapabilities:
    """Capabilities of the ngspice that ``mode`` would run (see :func:`resolve_mode`)."""
    chosen = resolve_mode(mode)
    return ngspice_capabilities() if chosen == "subprocess" else shared_capabilities()


def resolve_mode(mode: str = "auto") -> str:
    """Turn ``mode`` into ``"subprocess"`` or ``"shared"``, checking availability.

    Raises
    ------
    BackendError
        For an unknown mode (a ``ValueError``).
    NgspiceNotFoundError
        If the chosen mode (or, for ``"auto"``, both modes) cannot run here.
    """
    if mode not in MODES:
        raise BackendError(f"unknown ngspice mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "subprocess":
        if find_ngspice() is None:
            raise NgspiceNotFoundError(
                f"mode='subprocess' needs the ngspice executable, which is not on PATH "
                f"(PATH={os.environ.get('PATH', '')!r}); {INSTALL_HINT}"
            )
        return mode
    if mode == "shared":
        if find_libngspice() is None:
            raise NgspiceNotFoundError(
                f"mode='shared' needs the ngspice shared library libngspice, which cannot be "
                f"loaded; {INSTALL_HINT}"
            )
        return mode
    if find_ngspice() is not None:
        return "subprocess"
    if find_libngspice() is not None:
        return "shared"
    raise NgspiceNotFoundError(
        f"neither the ngspice executable (not on PATH) nor the libngspice shared library "
        f"was found; {INSTALL_HINT}"
    )


# -------------------------------------------------------------------- results
@dataclasses.dataclass
class RunResult:
    """Values and metadata of one ngspice run.

    Attributes
    ----------
    values : dict of str to float
        ``v(node)`` in volts and ``i(vsource)`` in amperes, names lower-case.
    output : str
        What ngspice printed.
    seconds : float
        Wall time of the run (subprocess: the whole process).
    mode : str
        ``"subprocess"`` or ``"shared"``.
    version : str
        ngspice version, e.g. ``"ngspice-39"``.
    deck_path : str or None
        Where the deck was kept (subprocess mode with ``keep_files=True``).
    solver : str
        Matrix solver ngspice reported: ``"KLU"`` or ``"Sparse 1.3"``.
    """

    values: dict[str, float]
    output: str
    seconds: float
    mode: str
    version: str
    deck_path: str | None = None
    solver: str = "Sparse 1.3"


def _truncate(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    half = _OUTPUT_LIMIT // 2
    return text[:half] + "\n[... output truncated ...]\n" + text[-half:]


def _checked_lines(output: str) -> list[str]:
    """ngspice's output lines, less the echo of the deck's title ("Circuit: ...")."""
    return [line for line in output.splitlines() if not line.lstrip().startswith("Circuit:")]


# ngspice reports an overflow in a device equation during a Newton iteration, then
# recovers by gmin or source stepping; once the stepping says it completed, those lines
# describe the path to the solution, not a failure of it.
_RECOVERED = re.compile(r"(gmin|source) stepping completed", re.IGNORECASE)
_RECOVERED_LINES = re.compile(
    r"^\s*error:.*out of range|starting .*stepping|stepping completed", re.IGNORECASE)


def _failure_lines(output: str) -> list[str]:
    lines = [line.strip() for line in _checked_lines(output) if _FAILURE_PATTERNS.search(line)]
    if _RECOVERED.search(output):
        lines = [line for line in lines if not _RECOVERED_LINES.search(line)]
    return lines


def _first_failure_line(output: str) -> str:
    lines = _failure_lines(output)
    return lines[0] if lines else ""


# ------------------------------------------------------------- subprocess mode
# ngspice runs in its own session (start_new_session), so a Ctrl-C or SIGTERM aimed at
# the terminal's foreground process group never reaches it. Every live run is recorded
# here and ended on any exit of ours: the run's own ``except BaseException`` for an
# exception or KeyboardInterrupt, the atexit hook for anything left, a temporary SIGTERM
# / SIGHUP handler that turns those signals into SystemExit, and PR_SET_PDEATHSIG so the
# kernel kills ngspice even if this process is SIGKILLed.
_LIVE_RUNS: dict[int, tuple[str, bool]] = {}  # pid -> (working directory, keep it)
_LIVE_LOCK = threading.Lock()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(pid, signal.SIGKILL)


def _end_live_runs() -> None:
    """Kill every ngspice process group still running and remove its folder (atexit)."""
    with _LIVE_LOCK:
        runs = list(_LIVE_RUNS.items())
        _LIVE_RUNS.clear()
    for pid, (workdir, keep) in runs:
        _kill_group(pid)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


atexit.register(_end_live_runs)


def _die_with_parent() -> None:
    """In the forked child: ask Linux to SIGKILL it when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the other guards still apply
        pass


def _raise_system_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_end_run() -> Iterator[None]:
    """While a run is live, make SIGTERM/SIGHUP raise SystemExit instead of killing us.

    Only signals still at their default action are taken over (a program's own handler
    is left alone), and only in the main thread, where Python delivers signals; the
    previous handlers are restored when the run ends.
    """
    saved: list[tuple[signal.Signals, object]] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, OSError):
                if signal.getsignal(sig) is signal.SIG_DFL:
                    signal.signal(sig, _raise_system_exit)
                    saved.append((sig, signal.SIG_DFL))
    try:
        yield
    finally:
        for sig, handler in saved:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, handler)  # type: ignore[arg-type]


def _check_finite(values: dict[str, float], deck_path: str | None, output: str,
                  where: str) -> None:
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if bad:
        shown = ", ".join(f"{name} = {values[name]!r}" for name in bad[:5])
        raise NgspiceOutputError(
            f"ngspice's output ({where}) holds {len(bad)} non-finite value(s): {shown}"
            + (" ..." if len(bad) > 5 else "")
            + (f"; deck kept at {deck_path}" if deck_path else ""),
            deck_path=deck_path, output=_truncate(output))


def _run_subprocess(
    deck: str, timeout: float | None, keep_files: bool | None
) -> RunResult:
    exe = find_ngspice()
    if exe is None:
        raise NgspiceNotFoundError(f"the ngspice executable is not on PATH; {INSTALL_HINT}")
    version = ngspice_version(exe)
    workdir = tempfile.mkdtemp(prefix="xbar-ngspice-")
    deck_path = os.path.join(workdir, "deck.cir")
    raw_path = os.path.join(workdir, "out.raw")
    with open(deck_path, "w", encoding="utf-8") as handle:
        handle.write(deck)
    env = dict(os.environ, LC_ALL="C")
    command = [exe, "-b", "-r", "out.raw", "deck.cir"]
    succeeded = False
    interrupted = False
    start = time.perf_counter()
    try:
        with _signals_end_run():
            try:
                proc = subprocess.Popen(
                    command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise NgspiceNotFoundError(
                    f"cannot start {exe}: {exc}; {INSTALL_HINT}") from None
            try:
                with _LIVE_LOCK:
                    _LIVE_RUNS[proc.pid] = (workdir, keep_files is True)
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.kill()
                stdout, _ = proc.communicate()
                output = stdout.decode("utf-8", "replace")
                kept = None if keep_files is False else deck_path
                raise NgspiceTimeoutError(
                    f"ngspice did not finish within {timeout} s and was killed"
                    + (f" (deck kept at {kept})" if kept else ""),
                    deck_path=kept,
                    output=_truncate(output),
                ) from None
            except BaseException:
                # KeyboardInterrupt, SystemExit from SIGTERM, or any other exception:
                # ngspice must not outlive the call.
                interrupted = True
                _kill_group(proc.pid)
                with contextlib.suppress(Exception):
                    proc.kill()
                    proc.wait(timeout=10)
                raise
            finally:
                with _LIVE_LOCK:
                    _LIVE_RUNS.pop(proc.pid, None)
        seconds = time.perf_counter() - start
        output = stdout.decode("utf-8", "replace")
        problems = _failure_lines(output)
        if proc.returncode != 0 or problems or not os.path.exists(raw_path):
            kept = None if keep_files is False else deck_path
            reason = (
                f"exit status {proc.returncode}" if proc.returncode != 0 else
                "no rawfile written" if not os.path.exists(raw_path) else
                "the operating point is not a clean solve"
            )
            first = _first_failure_line(output)
            message = f"ngspice failed on the deck ({reason}"
            if first:
                message += f"; first problem: {first!r}"
            message += ")"
            if kept:
                message += f"; deck kept at {kept}"
            message += "; ngspice's output is in the exception's .output"
            raise NgspiceError(message, deck_path=kept, output=_truncate(output))
        kept = None if keep_files is False else deck_path
        try:
            plots = read_rawfile(raw_path)
            values = op_values(plots[-1])
        except NgspiceError as exc:
            raise NgspiceError(
                f"{exc}" + (f"; deck kept at {kept}" if kept else ""),
                deck_path=kept, output=_truncate(output),
            ) from None
        _check_finite(values, kept, output, "rawfile")
        succeeded = True
    finally:
        # An interrupted run has nothing worth keeping unless the caller asked for it; a
        # signal can also land outside the guarded wait (just after ngspice started), so
        # the exception in flight decides too.
        interrupted = interrupted or isinstance(sys.exc_info()[1],
                                                (KeyboardInterrupt, SystemExit))
        keep = keep_files is True or (keep_files is None and not succeeded and not interrupted)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return RunResult(
        values=values, output=output, seconds=seconds, mode="subprocess", version=version,
        deck_path=deck_path if keep_files is True else None,
        solver=solver_from_output(output),
    )


# ------------------------------------------------------------------ shared mode
_PYSPICE_LOGGERS = ("PySpice.Spice.NgSpice.Shared", "PySpice.Spice.NgSpice.Shared.NgSpiceShared")


@contextlib.contextmanager
def _quiet_pyspice() -> Iterator[None]:
    """Silence PySpice's shared-mode loggers (ngspice's output is kept in our errors).

    PySpice logs every stderr line of ngspice at ERROR level, and "Unsupported
    Ngspice version 39" at WARNING; what matters reaches the caller as an exception
    carrying ngspice's output.
    """
    loggers = [logging.getLogger(name) for name in _PYSPICE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _Shared:
    """One process-wide libngspice instance driven through PySpice's NgSpiceShared.

    Runs are serialized by ``_busy``. With a timeout, the blocking ``run`` command
    executes in a worker thread; libngspice cannot interrupt an ``.op`` in progress
    (``bg_halt`` is only checked between time steps, and PySpice 1.5's background-thread
    callback returns None, which cffi reports on every ``bg_run``), so on timeout the
    caller gets :class:`NgspiceTimeoutError` at once while the worker finishes the run
    and cleans up; the next run waits for it.
    """

    _instance: _Shared | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        library = find_libngspice()
        if library is None:
            raise NgspiceNotFoundError(
                f"the ngspice shared library libngspice cannot be loaded; {INSTALL_HINT}"
            )
        try:
            from PySpice.Spice.NgSpice.Shared import (
                NgSpiceCircuitError,
                NgSpiceCommandError,
                NgSpiceShared,
                ffi,
            )
        except ImportError as exc:
            raise NgspiceNotFoundError(
                f'shared mode needs PySpice (pip install "xbar-circuit[spice]"): {exc}'
            ) from None
        # PySpice opens LIBRARY_PATH formatted with the instance id ("libngspice{}.so");
        # pointing it at the library we found also works with libngspice.so.0 alone.
        NgSpiceShared.LIBRARY_PATH = library
        # PySpice 1.5 knows ngspice vector types up to version 34 and logs
        # "Unsupported Ngspice version 39" at WARNING; it falls back to the version-34
        # table, which only its plot()/unit code uses. We read raw float64 vectors, so
        # the message is noise.
        try:
            with _quiet_pyspice():
                self.ng = NgSpiceShared.new_instance()
        except OSError as exc:
            raise NgspiceNotFoundError(f"cannot load {library}: {exc}; {INSTALL_HINT}") from None
        self.ffi = ffi
        self.lib = self.ng._ngspice_shared  # the cffi handle of libngspice
        self.command_error = NgSpiceCommandError
        self.circuit_error = NgSpiceCircuitError
        self.library = library
        self.version = f"ngspice-{self.ng.ngspice_version}"
        self._busy = threading.Lock()
        self._capabilities: NgspiceCapabilities | None = None

    @classmethod
    def get(cls) -> _Shared:
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    # ------------------------------------------------------------ primitives
    def _output(self) -> str:
        parts = [self.ng.stdout, self.ng.stderr]
        return "\n".join(p for p in parts if p)

    def _command(self, command: str) -> str:
        """Run an ngspice command; return its output (errors do not raise)."""
        try:
            self.ng.exec_command(command)
        except self.command_error:
            pass
        return self._output()

    def _circuit_count(self) -> int:
        text = self._command("setcirc")
        if "aren't any circuits" in text or "no circuits" in text.lower():
            return 0
        return len(re.findall(r"^\s*(?:Current\s+)?\d+\s+\S", text, re.MULTILINE))

    def circuit_count(self) -> int:
        """Number of circuits loaded in the library (``setcirc`` lists them)."""
        with self._busy, _quiet_pyspice():
            return self._circuit_count()

    def plot_names(self) -> list[str]:
        """Names of the result plots held by the library (``const`` is permanent)."""
        with self._busy:
            return list(self.ng.plot_names)

    def _read_current_plot(self) -> dict[str, float]:
        plot_c = self.lib.ngSpice_CurPlot()
        plot = self.ffi.string(plot_c).decode("utf-8")
        vectors = self.lib.ngSpice_AllVecs(plot_c)
        values: dict[str, float] = {}
        k = 0
        while vectors[k] != self.ffi.NULL:
            name = self.ffi.string(vectors[k]).decode("utf-8")
            k += 1
            info = self.lib.ngGet_Vec_Info(f"{plot}.{name}".encode())
            if info == self.ffi.NULL or info.v_length < 1 or info.v_realdata == self.ffi.NULL:
                continue
            vtype = "" if name.endswith("#branch") else "voltage"
            values[normalize_name(name, vtype)] = float(info.v_realdata[0])
        return values

    def _fail(self, message: str, deck: str, output: str, keep_files: bool | None) -> NgspiceError:
        kept = None
        if keep_files is not False:
            workdir = tempfile.mkdtemp(prefix="xbar-ngspice-shared-")
            kept = os.path.join(workdir, "deck.cir")
            with open(kept, "w", encoding="utf-8") as handle:
                handle.write(deck)
        first = _first_failure_line(output)
        text = f"ngspice (shared library) {message}" + (
            f"; first problem: {first!r}" if first else ""
        ) + (f"; deck kept at {kept}" if kept else "")
        return NgspiceError(text, deck_path=kept, output=_truncate(output))

    # -------------------------------------------------------------------- run
    def _run_locked(self, deck: str, keep_files: bool | None) -> RunResult:
        start = time.perf_counter()
        with _quiet_pyspice():
            try:
                log: list[str] = []
                try:
                    self.ng.load_circuit(deck)
                except self.circuit_error:
                    # PySpice flags any output line containing "error", even the echo of
                    # a title; judge the output with our own patterns below.
                    pass
                except NameError:  # ngSpice_Circ returned non-zero
                    raise self._fail(
                        "could not load the deck", deck, self._output(), keep_files
                    ) from None
                log.append(self._output())
                if _failure_lines(log[-1]):
                    raise self._fail("could not load the deck", deck, log[-1], keep_files)
                self._command("run")
                log.append(self._output())
                output = "\n".join(log)
                if _failure_lines(output):
                    raise self._fail("failed on the deck", deck, output, keep_files)
                values = self._read_current_plot()
                if not values:
                    raise self._fail("produced no operating point", deck, output, keep_files)
                bad = [name for name, value in values.items() if not math.isfinite(value)]
                if bad:
                    failure = self._fail(
                        f"returned {len(bad)} non-finite value(s), e.g. {bad[0]} = "
                        f"{values[bad[0]]!r}", deck, output, keep_files)
                    raise NgspiceOutputError(str(failure), deck_path=failure.deck_path,
                                             output=failure.output)
            finally:
                # Keep the library's memory flat: drop the circuit and every result plot.
                if self._circuit_count() > 0:
                    self._command("remcirc")
                self._command("destroy all")
                self.ng.clear_output()
        return RunResult(
            values=values, output=output, seconds=time.perf_counter() - start,
            mode="shared", version=self.version, solver=solver_from_output(output),
        )

    def capabilities(self) -> NgspiceCapabilities:
        """Version and KLU support of the library, probed once with a one-resistor deck."""
        if self._capabilities is None:
            result = self.run(_PROBE_DECK, timeout=60, keep_files=False)
            self._capabilities = NgspiceCapabilities(
                self.version, _major(self.version), bool(_KLU_LINE.search(result.output)),
                "shared")
        return self._capabilities

    def run(self, deck: str, timeout: float | None, keep_files: bool | None) -> RunResult:
        if timeout is None:
            with self._busy:
                return self._run_locked(deck, keep_files)
        start = time.perf_counter()
        if not self._busy.acquire(timeout=timeout):
            raise NgspiceTimeoutError(
                f"the shared ngspice library stayed busy with an earlier (timed-out) run for "
                f"{timeout} s; nothing was run"
            )
        outcome: dict[str, object] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["result"] = self._run_locked(deck, keep_files)
            except BaseException as exc:  # handed to the waiting thread
                outcome["error"] = exc
            finally:
                self._busy.release()
                done.set()

        threading.Thread(target=work, name="xbar-ngspice-shared", daemon=True).start()
        remaining = max(timeout - (time.perf_counter() - start), 0.0)
        if not done.wait(remaining):
            raise NgspiceTimeoutError(
                f"ngspice (shared library) did not finish within {timeout} s; libngspice "
                f"cannot interrupt an operating point, so the run goes on in a background "
                f"thread and later shared-mode runs wait for it (use mode='subprocess' to "
                f"have the run killed)",
            )
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["result"]  # type: ignore[return-value]


def shared_circuit_count() -> int:
    """Number of circuits currently loaded in the shared libngspice (0 after each run)."""
    return _Shared.get().circuit_count()


def shared_plot_names() -> list[str]:
    """Result plots held by the shared libngspice (only ``const`` after each run)."""
    return _Shared.get().plot_names()


# ------------------------------------------------------------------- dispatcher
def run_deck(
    deck: str,
    *,
    mode: str = "auto",
    timeout: float | None = None,
    keep_files: bool | None = None,
) -> RunResult:
    """Run one deck with an ``.op`` analysis through ngspice.

    Parameters
    ----------
    deck : str
        The netlist text (title line first, ``.op`` and ``.end`` included).
    mode : {"auto", "subprocess", "shared"}
        How to run ngspice (module docstring).
    timeout : float, optional
        Seconds before the run is abandoned: the subprocess is killed; in shared mode
        the caller is released at once but the library finishes the run in a
        background thread (libngspice cannot interrupt an ``.op``).
    keep_files : bool, optional
        None (default): delete the temporary directory after a successful run, keep
        the deck (and in subprocess mode the rawfile) after a failure; True: always
        keep (subprocess mode); False: never keep.

    Returns
    -------
    RunResult
        Values ``v(node)`` (volts) and ``i(vsource)`` (amperes) at full precision.

    Raises
    ------
    DeckTextError
        If a line of ``deck`` holds a control character or a line separator other than
        ``\\n`` / ``\\r\\n``.
    NgspiceNotFoundError
        If ngspice is not available in the requested mode.
    NgspiceError
        If ngspice fails on the deck (with its output and the kept deck's path).
    NgspiceOutputError
        If ngspice's output holds NaN or infinite values.
    NgspiceTimeoutError
        If ngspice does not finish within ``timeout`` seconds.
    """
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise InputError(f"timeout must be a positive, finite number of seconds, got "
                         f"{timeout!r}")
    # Subprocess ngspice splits lines at \n, PySpice's shared mode at everything
    # str.splitlines() knows: a deck with any other separator would read differently
    # (and could hide a .control line) in one of them.
    check_deck(deck)
    chosen = resolve_mode(mode)
    if chosen == "subprocess":
        return _run_subprocess(deck, timeout, keep_files)
    return _Shared.get().run(deck, timeout, keep_files)
