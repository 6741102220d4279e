"""Validation against SPICE as a product feature (installed as ``xbar_circuit.validation``).

* :mod:`.cases` - the reference corpus recipes; :mod:`.corpus` - reading and writing
  the committed ngspice results; :mod:`.make_references` - ``make references``.
* :mod:`.checks` - closed forms and physical identities (no simulator needed).
* :mod:`.tolerances` - every tolerance, in one place, with its reason.
* :mod:`.runner` - :func:`run_validation`, :func:`validate_spec`, the report.

Run ``xbar validate`` (or ``make validate``) to check every backend.
"""

from __future__ import annotations

from .runner import CheckResult, format_table, run_validation, validate_spec, write_report
from .tolerances import TOLERANCES, Tolerance, tolerance_for

__all__ = ["CheckResult", "format_table", "run_validation", "validate_spec", "write_report",
           "TOLERANCES", "Tolerance", "tolerance_for"]
