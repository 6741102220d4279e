"""Run a SPICE deck through ngspice and read every value at full double precision.

Two modes:

``"subprocess"``
    ``ngspice -b -r out.raw deck.cir`` in a fresh temporary directory; the binary
    rawfile is parsed with NumPy (:mod:`xbar_circuit.netlists.rawfile`). The
    7-significant-digit ``.op`` table on stdout is never read.
``"shared"``
    libngspice through PySpice 1.5's ``NgSpiceShared`` (imported lazily, on first use).
    The deck *text* goes to ``load_circuit``; values are read as float64 straight
    from the library's vectors; after each run the circuit is removed (``remcirc``)
    and the results destroyed (``destroy all``) so memory stays flat. PySpice's own
    subprocess mode and its ``simulator()`` path are not used at all.

``"auto"`` picks subprocess when the ``ngspice`` executable is on ``PATH``, else
shared mode when libngspice can be loaded, else raises
:class:`~xbar_circuit.errors.NgspiceNotFoundError`.

This module is the public entry point (:func:`run_deck`, :func:`capabilities`) and
re-exports the names of the modules that do the work: :mod:`.cost` (run-time
estimates), :mod:`.discovery` (finding ngspice and what it can do), :mod:`.results`
(:class:`RunResult`, judging ngspice's output), :mod:`.subprocess_run` and
:mod:`.shared_library` (the two modes).
"""

from __future__ import annotations

import math

from xbar_circuit.errors import InputError

from .cost import (
    COST_TABLE,
    COST_TABLE_KLU,
    COST_WARNING_CELLS,
    COST_WARNING_CELLS_KLU,
    NgspiceCostWarning,
    estimate_seconds,
    warn_if_costly,
)
from .deck import check_deck
from .discovery import (
    INSTALL_HINT,
    MODES,
    NgspiceCapabilities,
    find_libngspice,
    find_ngspice,
    ngspice_capabilities,
    ngspice_version,
    resolve_mode,
    solver_from_output,
)
from .results import NgspiceOutputError, RunResult
from .shared_library import (
    _Shared,
    shared_capabilities,
    shared_circuit_count,
    shared_plot_names,
)
from .subprocess_run import run_subprocess

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

# The examples of the re-exported functions run with this module's doctests.
__test__ = {"estimate_seconds": estimate_seconds, "solver_from_output": solver_from_output}


def capabilities(mode: str = "auto") -> NgspiceCapabilities:
    """Capabilities of the ngspice that ``mode`` would run (see :func:`resolve_mode`).

    Parameters
    ----------
    mode : {"auto", "subprocess", "shared"}
        How ngspice would run.

    Returns
    -------
    NgspiceCapabilities
        Version and KLU support of the executable or of the shared library.

    Raises
    ------
    NgspiceNotFoundError
        If ngspice is not available in the requested mode.
    """
    chosen = resolve_mode(mode)
    return ngspice_capabilities() if chosen == "subprocess" else shared_capabilities()


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
        return run_subprocess(deck, timeout, keep_files)
    return _Shared.get().run(deck, timeout, keep_files)
