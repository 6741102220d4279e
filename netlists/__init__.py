"""SPICE netlists of crossbars and the ngspice runner (installed as ``xbar_circuit.netlists``).

* :func:`write_deck` / :func:`write_decks`: plain-text ngspice decks, one per input
  vector, following the circuit convention of docs/convention.md §1.
* :func:`to_pyspice_circuit`: the same circuit as a PySpice ``Circuit`` (PySpice is
  imported only inside that call).
* :func:`run_deck`: run a deck through ngspice (subprocess or shared library) and read
  every node voltage and branch current at full double precision.
* :func:`read_rawfile`: parse a SPICE rawfile with NumPy.
* :func:`read_deck`: read a user's own deck into a :class:`Netlist` and solve its DC
  operating point with SciPy (networkx checks its graph), without ngspice.

Importing this package imports neither PySpice, matplotlib nor networkx.
"""

from __future__ import annotations

# This folder is a subpackage of xbar_circuit (setup.py maps it); imported under its bare
# name from a source tree, its relative imports would fail obscurely or load a second copy.
if __name__ != "xbar_circuit.netlists":
    raise ImportError(
        f"netlists/ is installed as 'xbar_circuit.netlists'; import it under that "
        f"name, not as {__name__!r} (install the package first: pip install -e .)"
    )

from .deck import (
    GROUND,
    KLU_OPTION,
    DeckTextError,
    Element,
    ammeter_name,
    check_deck,
    check_deck_text,
    col_node,
    deck_elements,
    driver_node,
    format_value,
    nonlinear_options,
    row_node,
    sense_node,
    source_name,
    source_node,
    vground_node,
    write_deck,
    write_decks,
)
from .pyspice_circuit import to_pyspice_circuit
from .rawfile import RawPlot, normalize_name, op_values, parse_rawfile, read_rawfile
from .read_deck import (
    DeckElement,
    DeckParseError,
    Netlist,
    NetlistError,
    OperatingPoint,
    ngspice_operating_point,
    parse_value,
    read_deck,
)
from .runner import (
    COST_TABLE,
    COST_TABLE_KLU,
    COST_WARNING_CELLS,
    COST_WARNING_CELLS_KLU,
    INSTALL_HINT,
    MODES,
    NgspiceCapabilities,
    NgspiceCostWarning,
    NgspiceOutputError,
    RunResult,
    capabilities,
    estimate_seconds,
    find_libngspice,
    find_ngspice,
    ngspice_capabilities,
    ngspice_version,
    resolve_mode,
    run_deck,
    shared_capabilities,
    shared_circuit_count,
    shared_plot_names,
    solver_from_output,
    warn_if_costly,
)

__all__ = [
    "COST_TABLE",
    "COST_TABLE_KLU",
    "COST_WARNING_CELLS",
    "COST_WARNING_CELLS_KLU",
    "GROUND",
    "INSTALL_HINT",
    "KLU_OPTION",
    "MODES",
    "DeckElement",
    "DeckParseError",
    "DeckTextError",
    "Element",
    "Netlist",
    "NetlistError",
    "NgspiceCapabilities",
    "NgspiceCostWarning",
    "NgspiceOutputError",
    "OperatingPoint",
    "RawPlot",
    "RunResult",
    "ammeter_name",
    "capabilities",
    "check_deck",
    "check_deck_text",
    "col_node",
    "deck_elements",
    "driver_node",
    "estimate_seconds",
    "find_libngspice",
    "find_ngspice",
    "format_value",
    "ngspice_capabilities",
    "ngspice_operating_point",
    "ngspice_version",
    "nonlinear_options",
    "normalize_name",
    "op_values",
    "parse_rawfile",
    "parse_value",
    "read_deck",
    "read_rawfile",
    "resolve_mode",
    "row_node",
    "run_deck",
    "sense_node",
    "shared_capabilities",
    "shared_circuit_count",
    "shared_plot_names",
    "solver_from_output",
    "source_name",
    "source_node",
    "to_pyspice_circuit",
    "vground_node",
    "warn_if_costly",
    "write_deck",
    "write_decks",
]
