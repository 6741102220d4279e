"""Circuit variants through the public API: effective conductance and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from xbar_circuit import TIA, Crossbar, Sinh, SpecError, effective_conductance, solve
from xbar_circuit.cli import main
from xbar_circuit.errors import BackendError, ConvergenceError


def _variant() -> Crossbar:
    rng = np.random.default_rng(4)
    m, n = 7, 5
    return Crossbar(rng.uniform(1e-6, 1e-4, (m, n)), r_row=rng.uniform(0.5, 2.0, (m, n + 1)),
                    r_col=rng.uniform(0.5, 2.0, (m, n)), r_driver=20.0, r_sense=0.0,
                    driver_side="both", sense_side="top", tia=TIA(gain=1e3, r_feedback=1e4))


def test_effective_conductance_of_a_linear_variant_reproduces_solve() -> None:
    xbar = _variant()
    g_eff = effective_conductance(xbar)
    v = np.random.default_rng(0).uniform(-0.2, 0.2, (6, xbar.n_rows))
    expected = solve(xbar, v, backend="reference").column_currents
    np.testing.assert_allclose(v @ g_eff, expected, rtol=1e-9, atol=1e-18)


def test_effective_conductance_rejects_nonlinear_cells() -> None:
    xbar = Crossbar.random(4, 4, r_row=1.0, r_col=1.0, seed=0).replace(device=Sinh(k=3.0))
    with pytest.raises(SpecError, match="only for linear cells"):
        effective_conductance(xbar)


def test_cli_solves_a_version_2_spec_with_tia(tmp_path) -> None:
    xbar = _variant()
    path = tmp_path / "variant.json"
    xbar.save(path)
    result = CliRunner().invoke(main, ["solve", str(path), "--compare", "nodal,reference"])
    assert result.exit_code == 0, result.output
    assert "per segment" in result.output and "TIA outputs" in result.output
    assert "AGREE" in result.output


def test_effective_conductance_of_a_variant_honours_solver_options() -> None:
    from xbar_circuit import BackendError, ConvergenceError

    xbar = _variant()
    with pytest.raises(BackendError, match="cg_max_iter"):
        effective_conductance(xbar, cg_max_iter=0)
    with pytest.raises(ConvergenceError):
        effective_conductance(xbar, cg_max_iter=1, rtol=1e-15)


def test_former_cg_cap_name_warns_and_still_caps() -> None:
    """``max_iter`` (former name of ``cg_max_iter``) reaches the same CG cap."""
    xbar = Crossbar(np.full((20, 20), 1e-3), r_row=100.0, r_col=100.0)
    with pytest.warns(DeprecationWarning, match="'max_iter' is now called 'cg_max_iter'"), \
            pytest.raises(ConvergenceError, match="cg_max_iter=2"):
        solve(xbar, np.ones(20), max_iter=2)
    with pytest.warns(DeprecationWarning), pytest.raises(ConvergenceError):
        effective_conductance(xbar, max_iter=2)
    with pytest.raises(BackendError, match="not also its former name"):
        solve(xbar, np.ones(20), max_iter=2, cg_max_iter=3)


def test_effective_conductance_on_every_backend_agrees() -> None:
    """The one public ``effective_conductance`` cross-checks itself on another backend."""
    xbar = Crossbar.random(6, 5, r_row=2.0, r_col=3.0, r_driver=5.0, r_sense=7.0,
                           driver_side="both", seed=3)
    nodal = effective_conductance(xbar)
    reference = effective_conductance(xbar, backend="reference")
    np.testing.assert_allclose(nodal, reference, rtol=1e-9, atol=0)
    from xbar_circuit import mapping
    assert mapping.effective_conductance is effective_conductance
    with pytest.raises(BackendError, match="unknown backend 'spice'"):
        effective_conductance(xbar, backend="spice")
