"""Shared mode: one process-wide libngspice, driven through PySpice 1.5's ``NgSpiceShared``.

PySpice is imported only when the library is first used. The deck *text* goes to
``load_circuit``; values are read as float64 straight from the library's vectors
through PySpice's cffi handle (its private ``_ngspice_shared``; PySpice's own
``plot()`` and unit tables are not used). After each run the circuit is removed
(``remcirc``) and every result plot destroyed (``destroy all``), so the library's
memory stays flat. PySpice's loggers are silenced while it runs: ngspice's output
reaches the caller in the exceptions instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator

from xbar_circuit.errors import NgspiceError, NgspiceNotFoundError, NgspiceTimeoutError

from . import discovery
from .discovery import _PROBE_DECK, INSTALL_HINT, NgspiceCapabilities, solver_from_output
from .rawfile import normalize_name
from .results import (
    NgspiceOutputError,
    RunResult,
    _failure_lines,
    _first_failure_line,
    _truncate,
)

__all__ = ["shared_capabilities", "shared_circuit_count", "shared_plot_names"]

logger = logging.getLogger(__name__)

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
        library = discovery.find_libngspice()
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
        logger.debug("loaded %s (%s) through PySpice", library, self.version)

    @classmethod
    def get(cls) -> _Shared:
        """The process-wide instance, created (and the library loaded) on first use."""
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
            self._capabilities = discovery._capabilities_from(self.version, result.output,
                                                              "shared")
        return self._capabilities

    def run(self, deck: str, timeout: float | None, keep_files: bool | None) -> RunResult:
        """Run one checked deck; see :func:`~xbar_circuit.netlists.run_deck`.

        Parameters
        ----------
        deck : str
            The netlist text.
        timeout : float or None
            Seconds before the caller is released with :class:`NgspiceTimeoutError`
            (the library finishes the run in a background thread).
        keep_files : bool or None
            False: never write the deck to disk; otherwise a failed deck is kept.

        Returns
        -------
        RunResult
        """
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


def shared_capabilities() -> NgspiceCapabilities:
    """Version and KLU support of the shared libngspice (loaded through PySpice), cached.

    Raises
    ------
    NgspiceNotFoundError
        If libngspice or PySpice cannot be loaded.
    """
    return _Shared.get().capabilities()


def shared_circuit_count() -> int:
    """Number of circuits currently loaded in the shared libngspice (0 after each run)."""
    return _Shared.get().circuit_count()


def shared_plot_names() -> list[str]:
    """Result plots held by the shared libngspice (only ``const`` after each run)."""
    return _Shared.get().plot_names()

