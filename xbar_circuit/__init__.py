"""xbar-circuit: circuit-level models of memristive compute-in-memory crossbars.

Describe an array once with :class:`Crossbar`, solve it with :func:`solve` on any
backend (``"nodal"``, ``"reference"``, ``"ngspice"``) and read the same
:class:`CrossbarSolution` from each.
"""

from __future__ import annotations


def _require_mapped_subpackages() -> None:
    """Stop with the fix when this package is a source tree that was never installed.

    setup.py maps the top-level folders ``netlists/``, ``cython_solvers/`` and
    ``validation/`` into this package; Python started inside a clone finds the bare
    ``xbar_circuit/`` folder first, and without an editable install those subpackages
    (and the compiled kernels) do not exist.
    """
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec(f"{__name__}.cython_solvers") is None:
        here = Path(__file__).resolve().parent
        raise ImportError(
            f"xbar_circuit was imported from {here}, a source tree without the subpackages "
            "that setup.py maps into it (netlists, cython_solvers, validation): install it "
            "in place (pip install -e . or make setup), or run Python from outside the "
            "source tree to use an installed copy"
        )


_require_mapped_subpackages()

from ._version import __version__
from .api import solve, validate_inputs
from .backends import BACKENDS, DEFAULT_BACKEND
from .devices import (
    DEVICES,
    AccessTransistor,
    Device,
    Linear,
    OneS1R,
    OneT1R,
    Selector,
    Sinh,
    device_from_dict,
)
from .effective import effective_conductance
from .errors import (
    BackendError,
    ConvergenceError,
    InputError,
    MissingDependencyError,
    NgspiceError,
    NgspiceNotFoundError,
    NgspiceTimeoutError,
    SpecError,
    XbarError,
)
from .factorized import CrossbarSolver, factorize
from .periphery import DRIVER_SIDES, SENSE_SIDES, TIA
from .solution import METRICS, CrossbarSolution
from .spec import JSON_VERSIONS, Crossbar


def __getattr__(name: str):
    """Import heavier public names on first use (``LookupTable`` needs xarray)."""
    if name == "LookupTable":
        from .tables import LookupTable

        return LookupTable
    raise AttributeError(f"module 'xbar_circuit' has no attribute {name!r}")

__all__ = [
    "__version__",
    "Crossbar",
    "CrossbarSolution",
    "Device",
    "Linear",
    "Sinh",
    "Selector",
    "AccessTransistor",
    "OneS1R",
    "OneT1R",
    "DEVICES",
    "device_from_dict",
    "TIA",
    "DRIVER_SIDES",
    "SENSE_SIDES",
    "JSON_VERSIONS",
    "solve",
    "factorize",
    "CrossbarSolver",
    "effective_conductance",
    "validate_inputs",
    "LookupTable",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "METRICS",
    "XbarError",
    "SpecError",
    "InputError",
    "BackendError",
    "NgspiceNotFoundError",
    "NgspiceError",
    "NgspiceTimeoutError",
    "ConvergenceError",
    "MissingDependencyError",
]
