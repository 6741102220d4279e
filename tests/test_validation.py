"""The validator itself: the committed corpus passes, and a wrong solver is caught."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.validation import run_validation, tolerance_for
from xbar_circuit.validation.cases import CASES, QUICK_CASES
from xbar_circuit.validation.checks import kcl_error, power_balance_error
from xbar_circuit.validation.corpus import CorpusError, load_manifest, load_reference


def test_manifest_lists_every_case_with_ngspice_version() -> None:
    manifest = load_manifest()
    assert [e["name"] for e in manifest["cases"]] == [c.name for c in CASES]
    assert manifest["ngspice_version"].startswith("ngspice")


@pytest.mark.parametrize("backend", ["nodal", "reference"])
def test_quick_corpus_passes(backend: str) -> None:
    rows = run_validation([backend], quick=True)
    assert len(rows) >= len(QUICK_CASES)
    failed = [(r.case, r.checks, r.note) for r in rows if not r.passed]
    assert not failed


def test_reference_agrees_with_committed_ngspice_on_the_full_corpus() -> None:
    """The full corpus against the independent reference solver (no ngspice needed)."""
    rows = run_validation(["reference"], families=("corpus",))
    assert len(rows) == len(CASES)
    worst = max(r.current_error for r in rows)
    assert worst <= tolerance_for("column_currents"), worst


def _wrong_solver(factor: float):
    """A solver with one wire resistance off by ``factor`` (a deliberately wrong model)."""
    def run(xbar: Crossbar, v_in: np.ndarray):
        if xbar.r_row == 0.0:
            return solve(xbar.replace(r_col=xbar.r_col * factor), v_in, backend="nodal")
        return solve(xbar.replace(r_row=xbar.r_row * factor), v_in, backend="nodal")
    return run


def test_validator_catches_a_one_percent_wire_error() -> None:
    rows = run_validation([], quick=True, solvers={"wrong": _wrong_solver(1.01)},
                          families=("corpus", "closed form"))
    corpus = [r for r in rows if r.family == "ngspice corpus"]
    # Every corpus case with non-zero wire resistance must fail.
    lossy = [r for r in corpus if "1x1" not in r.size]
    assert lossy and not any(r.passed for r in lossy)
    closed = [r for r in rows if r.family == "closed form"]
    assert not any(r.passed for r in closed)


def test_identity_checks_detect_a_perturbed_solution() -> None:
    xbar = Crossbar.random(6, 5, r_row=1.0, r_col=2.0, r_driver=10.0, seed=1)
    sol = solve(xbar, np.full(6, 0.2), backend="reference")
    assert kcl_error(sol) < 1e-12
    assert power_balance_error(sol) < 1e-12
    vr = np.array(sol.row_voltages)
    vr[2, 3] *= 1.0 + 1e-6
    sol.row_voltages = vr  # a solution one node voltage off by 1 ppm
    assert kcl_error(sol) > tolerance_for("kcl")


def test_modified_reference_file_is_rejected(tmp_path) -> None:
    import shutil

    from xbar_circuit.validation.corpus import REFERENCE_DIR

    case = QUICK_CASES[0]
    shutil.copytree(REFERENCE_DIR, tmp_path / "refs")
    raw = tmp_path / "refs" / case.name / "ngspice.raw"
    data = bytearray(raw.read_bytes())
    data[-3] ^= 0xFF
    raw.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match="changed since it was generated"):
        load_reference(case, tmp_path / "refs")


@pytest.mark.skipif(__import__("shutil").which("ngspice") is None, reason="ngspice missing")
def test_validate_spec_reports_every_column_group_and_the_reference_yardstick() -> None:
    from xbar_circuit.validation.runner import column_groups, validate_spec

    xbar = Crossbar.random(10, 70, r_row=1.0, r_col=2.0, r_driver=5.0, r_sense=5.0, seed=5)
    v_in = np.random.default_rng(5).uniform(0.0, 0.3, 10)
    rows = validate_spec(xbar, v_in, ["nodal", "reference"], mode="subprocess")
    groups = column_groups(70)
    assert groups == [(0, 31), (32, 63), (64, 69)]
    for backend in ("nodal", "reference"):
        mine = [r for r in rows if r.backend == backend]
        assert [r.case for r in mine] == ["all columns"] + [f"columns {a}-{b}" for a, b in groups]
        assert all(r.passed for r in mine), [(r.case, r.checks) for r in mine]
        # the whole-array error is the largest of the group errors
        assert mine[0].current_error == max(r.current_error for r in mine[1:])
        assert "ngspice-" in mine[0].note


@pytest.mark.skipif(__import__("shutil").which("ngspice") is None, reason="ngspice missing")
def test_validate_spec_catches_a_wrong_column_group(monkeypatch) -> None:
    """A backend wrong in one column only fails that group (and the whole array)."""
    import xbar_circuit.validation.runner as runner

    xbar = Crossbar.random(6, 40, r_row=1.0, r_col=1.0, seed=6)
    v_in = np.full(6, 0.2)
    real = runner.solve

    def skewed(crossbar, v, backend="nodal", **options):
        sol = real(crossbar, v, backend=backend, **options)
        if backend == "nodal":
            currents = np.array(sol.column_currents)
            currents[..., 35] *= 1.0 + 1e-6
            sol.column_currents = currents
        return sol

    monkeypatch.setattr(runner, "solve", skewed)
    rows = runner.validate_spec(xbar, v_in, ["nodal"], mode="subprocess")
    verdict = {r.case: r.passed for r in rows}
    assert verdict == {"all columns": False, "columns 0-31": True, "columns 32-39": False}
