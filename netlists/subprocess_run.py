"""Subprocess mode: run a deck with the ``ngspice`` executable and read its rawfile.

Each run gets a fresh temporary directory holding ``deck.cir``; ``ngspice -b -r out.raw
deck.cir`` writes the binary rawfile, which is parsed with NumPy
(:mod:`.rawfile`) at full double precision. ngspice runs in its own session and is
killed with its process group on a timeout, an exception, Ctrl-C, SIGTERM/SIGHUP, at
interpreter exit, and (on Linux) when this process dies.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from xbar_circuit.errors import NgspiceError, NgspiceNotFoundError, NgspiceTimeoutError

from .discovery import INSTALL_HINT, _require_ngspice, ngspice_version, solver_from_output
from .rawfile import op_values, read_rawfile
from .results import (
    RunResult,
    _check_finite,
    _failure_lines,
    _first_failure_line,
    _kept_deck,
    _truncate,
)

__all__ = ["run_subprocess"]

logger = logging.getLogger(__name__)

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


def run_subprocess(deck: str, timeout: float | None, keep_files: bool | None) -> RunResult:
    """Run ``deck`` with the ``ngspice`` executable and read every value from its rawfile.

    Parameters
    ----------
    deck : str
        The netlist text, already checked (:func:`~xbar_circuit.netlists.check_deck`).
    timeout : float or None
        Seconds before ngspice is killed.
    keep_files : bool or None
        As in :func:`~xbar_circuit.netlists.run_deck`.

    Returns
    -------
    RunResult

    Raises
    ------
    NgspiceNotFoundError
        If the executable is not on ``PATH`` or cannot be started.
    NgspiceError
        If ngspice fails on the deck; :class:`~.results.NgspiceOutputError` if its
        values are not finite.
    NgspiceTimeoutError
        If ngspice does not finish within ``timeout`` seconds.
    """
    exe = _require_ngspice()
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
    logger.debug("running %s in %s", " ".join(command), workdir)
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
                kept = _kept_deck(deck_path, keep_files)
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
        kept = _kept_deck(deck_path, keep_files)
        problems = _failure_lines(output)
        if proc.returncode != 0 or problems or not os.path.exists(raw_path):
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
        logger.debug("ngspice finished in %.3f s, %d values read", seconds, len(values))
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

