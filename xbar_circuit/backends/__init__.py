"""Backend registry: names map to the module that implements them.

Backends are imported only when chosen, so ``import xbar_circuit`` stays light
(PySpice, for example, is only imported by the ``"ngspice"`` backend in shared mode).

A backend module defines ``solve_batch(crossbar, v_in, **options) -> BackendOutput``
with ``v_in`` a validated, C-contiguous float64 array of shape (B, M).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

from ..errors import BackendError

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "get_backend"]

BACKENDS: dict[str, str] = {
    "nodal": "xbar_circuit.backends.nodal",
    "reference": "xbar_circuit.backends.reference",
    "ngspice": "xbar_circuit.backends.ngspice",
}
"""Backend name -> module path. ``"nodal"`` is the compiled solver (the default),
``"reference"`` the independent SciPy nodal analysis, ``"ngspice"`` runs ngspice."""

DEFAULT_BACKEND = "nodal"


def get_backend(name: str) -> ModuleType:
    """Import and return the module implementing backend ``name``.

    Raises
    ------
    BackendError
        For an unknown name; the message lists the known backends.
    """
    try:
        module_path = BACKENDS[name]
    except (KeyError, TypeError):
        raise BackendError(
            f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None
    return importlib.import_module(module_path)


def backend_solver(name: str) -> Callable[..., object]:
    """Return the ``solve_batch`` function of backend ``name``."""
    return get_backend(name).solve_batch
