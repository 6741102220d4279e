"""Input validation, backend selection and metrics of the solve() call."""

from __future__ import annotations

import numpy as np
import pytest

import xbar_circuit as xc
from xbar_circuit import BackendError, Crossbar, InputError, solve


@pytest.fixture
def xbar() -> Crossbar:
    return Crossbar.random(3, 4, r_row=1.0, r_col=2.0, r_driver=5.0, r_sense=3.0, seed=4)


@pytest.mark.parametrize(
    ("v_in", "match"),
    [
        (np.ones(4), "crossbar has M=3 rows"),
        (np.ones((2, 4)), "crossbar has M=3 rows"),
        (np.ones((2, 2, 3)), "shape"),
        (np.ones((0, 3)), "empty batch"),
        (np.array([0.1, np.nan, 0.2]), r"v_in\[1\] = nan"),
        (np.array([[0.1, 0.2, 0.3], [0.1, 0.2, np.inf]]), r"v_in\[1, 2\] = inf"),
        ("abc", "v_in must be an array of real numbers"),
    ],
)
@pytest.mark.parametrize("backend", ["reference", "nodal"])
def test_bad_inputs_raise_input_error(xbar: Crossbar, v_in, match: str, backend: str) -> None:
    with pytest.raises(InputError, match=match):
        solve(xbar, v_in, backend=backend)


def test_unknown_backend_lists_known_ones(xbar: Crossbar) -> None:
    with pytest.raises(BackendError, match=r"unknown backend 'spectre'.*nodal"):
        solve(xbar, np.ones(3), backend="spectre")


def test_shapes_single_and_batch(xbar: Crossbar) -> None:
    single = solve(xbar, [0.1, 0.2, 0.3], backend="reference")
    assert single.column_currents.shape == (4,)
    assert single.row_voltages.shape == (3, 4)
    assert isinstance(single.nf, float)
    batch = solve(xbar, np.tile([0.1, 0.2, 0.3], (5, 1)), backend="reference")
    assert batch.column_currents.shape == (5, 4)
    assert batch.nf.shape == (5,)
    np.testing.assert_allclose(batch.column_currents[3], single.column_currents, rtol=1e-14)


def test_metrics_by_name_match_their_definitions(xbar: Crossbar) -> None:
    v = np.array([0.3, 0.0, 0.2])
    sol = solve(xbar, v, backend="reference")
    ideal = v @ xbar.conductance
    current = sol.column_currents
    nf_cols = (ideal - current) / ideal
    assert sol.metric("nf") == pytest.approx(nf_cols.mean(), rel=1e-14)
    assert sol.metric("nf_aggregate") == pytest.approx(
        (ideal - current).sum() / ideal.sum(), rel=1e-14)
    assert sol.metric("relative_error") == pytest.approx(
        np.linalg.norm(current - ideal) / np.linalg.norm(ideal), rel=1e-14)
    loss = sol.metric("cell_loss")
    assert np.isnan(loss[1]).all()  # row with V_in = 0
    np.testing.assert_allclose(loss[0], 1 - sol.cell_voltages[0] / 0.3, rtol=1e-14)
    weights = 2.0 ** np.arange(4)
    assert sol.metric("nf_bit_weighted", column_weights=weights) == pytest.approx(
        ((ideal - current) @ weights) / (ideal @ weights), rel=1e-14)
    with pytest.raises(InputError, match="unknown metric"):
        sol.metric("snr")


def test_nf_excludes_columns_without_ideal_current() -> None:
    g = np.full((2, 3), 1e-4)
    g[:, 1] = 0.0
    sol = solve(Crossbar(g, r_row=1.0, r_col=1.0), [0.2, 0.2], backend="reference")
    assert np.isnan(sol.nf_columns[1])
    assert sol.nf == pytest.approx(np.nanmean(sol.nf_columns), rel=1e-14)
    assert sol.column_currents[1] == 0.0
    zero = solve(Crossbar(g, r_row=1.0, r_col=1.0), [0.0, 0.0], backend="reference")
    assert np.isnan(zero.nf)


def test_solution_arrays_are_read_only(xbar: Crossbar) -> None:
    sol = solve(xbar, np.ones(3), backend="reference")
    with pytest.raises(ValueError):
        sol.column_currents[0] = 0.0


def test_public_names() -> None:
    for name in ("Crossbar", "solve", "CrossbarSolution", "BACKENDS", "METRICS", "SpecError"):
        assert hasattr(xc, name)
    assert set(xc.BACKENDS) >= {"nodal", "reference", "ngspice"}


@pytest.mark.parametrize("backend", ["nodal", "reference", "ngspice"])
def test_option_typos_are_backend_errors(xbar: Crossbar, backend: str) -> None:
    with pytest.raises(BackendError, match="rtoll"):
        solve(xbar, np.ones(3), backend=backend, rtoll=1e-9)


def test_huge_iteration_caps_never_reach_the_kernel(xbar: Crossbar) -> None:
    with pytest.raises(BackendError, match=r"cg_max_iter must be an integer in \[1, 2147483647\]"):
        solve(xbar, np.ones(3), cg_max_iter=2**70)


@pytest.mark.parametrize("backend", ["nodal", "reference"])
def test_gate_voltage_for_gateless_cells_is_an_error(xbar: Crossbar, backend: str) -> None:
    from xbar_circuit import SpecError

    with pytest.raises(SpecError, match="no gate"):
        solve(xbar, np.ones(3), backend=backend, v_gate=1.0)
