"""Run the docstring examples of the public modules (numpydoc ``Examples`` sections)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "xbar_circuit.spec",
    "xbar_circuit.api",
    "xbar_circuit.solution",
    "xbar_circuit.backends.nodal",
    "xbar_circuit.cython_solvers.assembly",
    "xbar_circuit.netlists",
    "xbar_circuit.netlists.deck",
    "xbar_circuit.netlists.rawfile",
    "xbar_circuit.netlists.runner",
    "xbar_circuit.netlists.pyspice_circuit",
    "xbar_circuit.backends.ngspice",
    "xbar_circuit.validation.checks",
    "xbar_circuit.validation.reports",
    "xbar_circuit.effective",
    "xbar_circuit.factorized",
    "xbar_circuit.devices",
    "xbar_circuit.periphery",
    "xbar_circuit.variability",
    "xbar_circuit.presets",
    "xbar_circuit.cython_solvers.line_pcg",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
