"""Find ngspice on this machine: the executable, the shared library, their capabilities.

:func:`find_ngspice` looks for the ``ngspice`` executable on ``PATH``,
:func:`find_libngspice` for a loadable libngspice; :func:`resolve_mode` turns a run
mode (``"auto"``, ``"subprocess"``, ``"shared"``) into one that can run here.
:func:`ngspice_capabilities` probes the executable once for its version and whether it
has the KLU solver (the shared library's probe is in :mod:`.shared_library`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading

from xbar_circuit.errors import BackendError, NgspiceNotFoundError

__all__ = [
    "INSTALL_HINT",
    "MODES",
    "NgspiceCapabilities",
    "find_libngspice",
    "find_ngspice",
    "ngspice_capabilities",
    "ngspice_version",
    "resolve_mode",
    "solver_from_output",
]

logger = logging.getLogger(__name__)

MODES = ("auto", "subprocess", "shared")

INSTALL_HINT = (
    "install it with `apt-get install ngspice libngspice0 libngspice0-dev` (Debian/Ubuntu), "
    "or put the ngspice executable on PATH / set NGSPICE_LIBRARY_PATH to libngspice.so"
)


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


def _require_ngspice(executable: str | None = None) -> str:
    """``executable``, or the one on ``PATH``; NgspiceNotFoundError when there is none."""
    exe = executable or find_ngspice()
    if exe is None:
        raise NgspiceNotFoundError(f"the ngspice executable is not on PATH; {INSTALL_HINT}")
    return exe


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
    exe = _require_ngspice(executable)
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


def _capabilities_from(version: str, probe_output: str, mode: str) -> NgspiceCapabilities:
    """Capabilities of an ngspice of ``version`` that printed ``probe_output`` on the probe."""
    return NgspiceCapabilities(version, _major(version), bool(_KLU_LINE.search(probe_output)),
                               mode)


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
    exe = _require_ngspice(executable)
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
    found = _capabilities_from(version, output, "subprocess")
    logger.debug("%s: %s, %s solver", exe, found.version, found.solver)
    with _CAPABILITIES_LOCK:
        _CAPABILITIES[key] = found
    return found


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
        logger.debug("mode='auto': no ngspice executable on PATH, using the shared library")
        return "shared"
    raise NgspiceNotFoundError(
        f"neither the ngspice executable (not on PATH) nor the libngspice shared library "
        f"was found; {INSTALL_HINT}"
    )

