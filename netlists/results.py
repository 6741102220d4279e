"""What one ngspice run returns, and how ngspice's printed output is judged.

Both run modes (:mod:`.subprocess_run` and :mod:`.shared_library`) return a
:class:`RunResult` and decide from the same patterns whether ngspice's output means a
failed operating point; an error keeps at most :data:`_OUTPUT_LIMIT` characters of that
output.
"""

from __future__ import annotations

import dataclasses
import math
import re

from xbar_circuit.errors import NgspiceError

__all__ = ["NgspiceOutputError", "RunResult"]

_OUTPUT_LIMIT = 20_000  # characters of ngspice output kept in an exception

# Lines of ngspice output that mean the operating point is not a clean linear solve.
_FAILURE_PATTERNS = re.compile(
    r"^\s*error|singular matrix|gmin stepping|source stepping|simulation interrupted"
    r"|circuit not parsed|no such|unknown parameter|timestep too small",
    re.IGNORECASE | re.MULTILINE,
)

# ngspice reports an overflow in a device equation during a Newton iteration, then
# recovers by gmin or source stepping; once the stepping says it completed, those lines
# describe the path to the solution, not a failure of it.
_RECOVERED = re.compile(r"(gmin|source) stepping completed", re.IGNORECASE)
_RECOVERED_LINES = re.compile(
    r"^\s*error:.*out of range|starting .*stepping|stepping completed", re.IGNORECASE)


class NgspiceOutputError(NgspiceError):
    """ngspice finished, but its output holds NaN or infinite values.

    A non-finite node voltage or branch current is never a valid operating point of
    a resistive network; the deck is kept and named, as for any failure.
    """


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


def _failure_lines(output: str) -> list[str]:
    lines = [line.strip() for line in _checked_lines(output) if _FAILURE_PATTERNS.search(line)]
    if _RECOVERED.search(output):
        lines = [line for line in lines if not _RECOVERED_LINES.search(line)]
    return lines


def _first_failure_line(output: str) -> str:
    lines = _failure_lines(output)
    return lines[0] if lines else ""


def _kept_deck(deck_path: str, keep_files: bool | None) -> str | None:
    """Where a failed run's deck stays: nowhere with ``keep_files=False``."""
    return None if keep_files is False else deck_path


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
