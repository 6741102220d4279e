"""Validation against SPICE as a product feature (installed as ``xbar_circuit.validation``).

* :mod:`.cases` - the reference corpus recipes; :mod:`.corpus` - reading and writing
  the committed ngspice results (``make references`` regenerates them with
  ``scripts/make_references.py``).
* :mod:`.checks` - closed forms and physical identities (no simulator needed).
* :mod:`.tolerances` - every tolerance, in one place, with its reason.
* :mod:`.runner` - :func:`run_validation`, :func:`validate_spec`, the report.

Run ``xbar validate`` (or ``make validate``) to check every backend.
"""

from __future__ import annotations

# This folder is a subpackage of xbar_circuit (setup.py maps it); imported under its bare
# name from a source tree, its relative imports would fail obscurely or load a second copy.
if __name__ != "xbar_circuit.validation":
    raise ImportError(
        f"validation/ is installed as 'xbar_circuit.validation'; import it under that "
        f"name, not as {__name__!r} (install the package first: pip install -e .)"
    )

from .runner import CheckResult, format_table, run_validation, validate_spec, write_report
from .tolerances import TOLERANCES, Tolerance, tolerance_for

__all__ = ["CheckResult", "format_table", "run_validation", "validate_spec", "write_report",
           "TOLERANCES", "Tolerance", "tolerance_for"]
