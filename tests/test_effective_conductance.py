"""``effective_conductance``: the exact linear map ``I = V · G_eff`` of a linear array."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import BackendError, Crossbar, SpecError, solve
from xbar_circuit.effective import effective_conductance


@pytest.mark.parametrize("shape", [(10, 10), (14, 6), (6, 14), (1, 8), (8, 1)])
@pytest.mark.parametrize("periphery", [(0.0, 0.0), (20.0, 10.0)])
@pytest.mark.parametrize("r_wire", [1e-3, 1.0, 50.0])
def test_reproduces_solve(shape, periphery, r_wire):
    m, _ = shape
    xbar = Crossbar.random(*shape, r_row=r_wire, r_col=r_wire, r_driver=periphery[0],
                           r_sense=periphery[1], g_off=1e-6, g_on=1e-3, seed=m)
    g_eff = effective_conductance(xbar)
    assert g_eff.shape == shape and g_eff.flags.writeable
    v = np.random.default_rng(1).uniform(-0.5, 1.0, size=(6, m))
    expected = solve(xbar, v, backend="reference").column_currents
    np.testing.assert_allclose(v @ g_eff, expected, rtol=0,
                               atol=1e-9 * np.max(np.abs(expected)))


@pytest.mark.parametrize("shape", [(9, 4), (4, 9)])
def test_rows_and_columns_methods_agree(shape):
    xbar = Crossbar.random(*shape, r_row=2.0, r_col=1.0, r_driver=5.0, r_sense=5.0, seed=2)
    by_rows = effective_conductance(xbar, method="rows")
    by_cols = effective_conductance(xbar, method="columns")
    np.testing.assert_allclose(by_cols, by_rows, rtol=1e-10)
    np.testing.assert_allclose(effective_conductance(xbar), by_rows, rtol=1e-10)


def test_ideal_array_returns_conductance():
    xbar = Crossbar.random(3, 4, r_row=0.0, r_col=0.0, seed=3)
    g_eff = effective_conductance(xbar)
    np.testing.assert_array_equal(g_eff, xbar.conductance)
    g_eff[0, 0] = 1.0                         # a copy, the spec stays untouched
    assert xbar.conductance[0, 0] != 1.0


@pytest.mark.parametrize(
    "resistances",
    [(0.0, 3.0, 1.0, 0.0), (0.0, 0.0, 1.0, 2.0), (2.0, 1.0, 0.0, 0.0), (2.0, 1.0, 0.0, 4.0)],
)
def test_zero_ohm_wire(resistances):
    r_row, r_driver, r_col, r_sense = resistances
    xbar = Crossbar.random(5, 6, r_row=r_row, r_driver=r_driver, r_col=r_col,
                           r_sense=r_sense, seed=4)
    v = np.random.default_rng(5).uniform(0.0, 1.0, size=(3, 5))
    np.testing.assert_allclose(v @ effective_conductance(xbar),
                               solve(xbar, v, backend="reference").column_currents, rtol=1e-9)


def test_lossless_limit_and_loss_sign():
    xbar = Crossbar.random(8, 8, r_row=1.0, r_col=1.0, seed=6)
    g_eff = effective_conductance(xbar)
    # Positive inputs lose current to the wires: every column reads less than ideal.
    v = np.ones(8)
    assert np.all(v @ g_eff < v @ xbar.conductance)
    tiny = effective_conductance(xbar.replace(r_row=1e-9, r_col=1e-9))
    np.testing.assert_allclose(tiny, xbar.conductance, rtol=1e-6)


def test_validation():
    xbar = Crossbar.random(3, 3, r_row=1.0, r_col=1.0, seed=7)
    with pytest.raises(BackendError):
        effective_conductance(xbar, method="diagonal")
    with pytest.raises(BackendError):
        effective_conductance(xbar, rtol=-1.0)
    with pytest.raises(SpecError):
        effective_conductance(np.ones((3, 3)))


@pytest.mark.parametrize("name", ["xbar_circuit.effective", "xbar_circuit.cython_solvers.line_pcg"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
