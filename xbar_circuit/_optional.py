"""Import optional dependencies where they are used, naming the extra that provides them.

A plain ``pip install xbar-circuit`` brings only NumPy, SciPy, click and tqdm; PySpice,
Dask, xarray, h5py, matplotlib, PyYAML and torch come with the extras listed in
:data:`EXTRAS`, and each is imported only by the function that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["EXTRAS", "import_optional"]

EXTRAS: dict[str, str] = {
    "PySpice": "spice",
    "networkx": "spice",
    "xarray": "tables",
    "dask": "tables",
    "distributed": "tables",
    "h5netcdf": "tables",
    "h5py": "tables",
    "yaml": "tables",
    "matplotlib": "plot",
    "torch": "torch",
    "aihwkit": "aihwkit",
}
"""The extra that installs each optional top-level module."""


def import_optional(name: str, purpose: str) -> ModuleType:
    """Import module ``name`` or raise an error naming the extra that installs it.

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"xarray"`` or ``"matplotlib.pyplot"``.
    purpose : str
        What needs it, completing "... needs <package>", e.g. ``"CrossbarSolution.save"``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        When the module (or one it imports) is missing; the message says what to install.

    Examples
    --------
    >>> import_optional("json", "an example").__name__
    'json'
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra = EXTRAS.get(top, "all")
        raise MissingDependencyError(
            f"{purpose} needs {top}, which is not installed ({exc}); install it with "
            f'pip install "xbar-circuit[{extra}]"',
            extra=extra,
        ) from exc
