"""ngspice output that recovered by stepping is a solution; output that did not is not."""

from __future__ import annotations

from xbar_circuit.netlists.results import _failure_lines

RECOVERED = """Error: -2.32349e+92 out of range for cosh
    in line bcell_7_7
Note: Starting dynamic gmin stepping
Note: Dynamic gmin stepping completed
No. of Data Rows : 1
"""

FAILED = """Error: -2.32349e+92 out of range for cosh
Note: Starting dynamic gmin stepping
Warning: Dynamic gmin stepping failed
Note: Starting true gmin stepping
Warning: True gmin stepping failed
Note: Starting source stepping
Warning: source stepping failed
"""


def test_recovered_output_has_no_failure_lines() -> None:
    assert _failure_lines(RECOVERED) == []


def test_failed_stepping_is_a_failure() -> None:
    lines = _failure_lines(FAILED)
    assert any("out of range" in line for line in lines)
    assert any("failed" in line for line in lines)


def test_singular_matrix_is_a_failure_even_after_recovery_notes() -> None:
    assert _failure_lines(RECOVERED + "singular matrix: check node c_0_0\n")
