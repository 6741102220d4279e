"""Exceptions raised by xbar-circuit.

Every error a user can cause has its own class, so that callers can catch
exactly what they expect.  All of them derive from :class:`XbarError`.
"""

from __future__ import annotations

__all__ = [
    "XbarError",
    "SpecError",
    "InputError",
    "BackendError",
    "NgspiceNotFoundError",
    "NgspiceError",
    "NgspiceTimeoutError",
    "ConvergenceError",
    "MemoryLimitError",
    "ResultError",
    "NonFiniteResultError",
    "MissingDependencyError",
]


class XbarError(Exception):
    """Base class of every exception raised by xbar-circuit."""


class SpecError(XbarError, ValueError):
    """A crossbar specification is invalid (shape, value or type of a field)."""


class InputError(XbarError, ValueError):
    """Input voltages do not fit the crossbar (shape, NaN or infinite values)."""


class BackendError(XbarError, ValueError):
    """An unknown backend name, or options a backend does not accept."""


class NgspiceNotFoundError(XbarError, RuntimeError):
    """Neither the ``ngspice`` executable nor the shared library could be found."""


class NgspiceError(XbarError, RuntimeError):
    """ngspice ran but failed on a deck, or its output could not be read.

    Attributes
    ----------
    deck_path : str or None
        Path of the deck that was simulated (kept on disk for inspection).
    output : str
        What ngspice printed (stdout and stderr), possibly truncated.
    """

    def __init__(self, message: str, deck_path: str | None = None, output: str = "") -> None:
        super().__init__(message)
        self.deck_path = deck_path
        self.output = output


class NgspiceTimeoutError(NgspiceError):
    """ngspice did not finish within the allowed time."""


class ConvergenceError(XbarError, RuntimeError):
    """An iterative solver stopped before reaching its tolerance.

    Attributes
    ----------
    iterations : int
        Iterations performed.
    residual : float
        Relative residual reached (dimensionless).
    tolerance : float
        Relative residual that was asked for.
    """

    def __init__(self, message: str, iterations: int, residual: float, tolerance: float) -> None:
        super().__init__(message)
        self.iterations = iterations
        self.residual = residual
        self.tolerance = tolerance


class MissingDependencyError(XbarError, ImportError):
    """An optional dependency is not installed; the message names the extra to install.

    Attributes
    ----------
    extra : str
        The package extra that provides it, as in ``pip install "xbar-circuit[extra]"``.
    """

    def __init__(self, message: str, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class MemoryLimitError(InputError):
    """A request would need more memory than the machine has available.

    Raised before anything large is allocated.

    Attributes
    ----------
    needed : int
        Estimated bytes the request needs.
    available : int
        Bytes of memory available when it was checked.
    """

    def __init__(self, message: str, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


class ResultError(XbarError, RuntimeError):
    """A backend returned a result that is physically impossible (e.g. node voltages
    outside the range of the sources), so it cannot be trusted."""


class NonFiniteResultError(ResultError):
    """A backend returned NaN or infinite voltages or currents."""
