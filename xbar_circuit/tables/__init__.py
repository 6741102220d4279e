"""Calibrated nonideality lookup tables.

Generate a table once from exact circuit solves over a sweep of parameters
(:func:`calibrate`, or ``xbar calibrate SWEEP -o TABLE``), then estimate the
nonideality of any array without solving it again (:class:`LookupTable`).

Importing this package is light: xarray, Dask and matplotlib are imported only by the
functions that need them.
"""

from __future__ import annotations

from typing import Any

from ._errors import SweepError, TableError
from .sweep import DIMS, Sweep

__all__ = ["DIMS", "CalibrationResult", "LookupTable", "OutOfRangeWarning", "Sweep",
           "SweepError", "TableError", "calibrate"]

_LAZY = {
    "LookupTable": ".lut", "OutOfRangeWarning": ".lut",
    "calibrate": ".calibration", "CalibrationResult": ".calibration",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
