"""Variability, fault and quantization transforms: reproducible and with the claimed statistics."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import Crossbar, SpecError
from xbar_circuit.presets import PRESETS, get_preset
from xbar_circuit.variability import (
    lognormal_variability,
    quantize_conductance,
    stuck_at_faults,
)

BIG = (1000, 1000)  # one million cells: sampling errors of order 1e-3


@pytest.fixture(scope="module")
def big() -> Crossbar:
    rng = np.random.default_rng(0)
    return Crossbar(rng.uniform(1e-6, 1e-4, BIG), r_row=1.0, r_col=1.0, r_driver=3.0)


def test_lognormal_statistics_and_reproducibility(big: Crossbar) -> None:
    sigma = 0.25
    out = lognormal_variability(big, sigma, seed=42)
    log_ratio = np.log(out.conductance / big.conductance)
    n = log_ratio.size
    # Mean 0 within 5 standard errors; std within 5 standard errors (se ~ σ/sqrt(2n)).
    assert abs(log_ratio.mean()) < 5 * sigma / np.sqrt(n)
    assert abs(log_ratio.std() - sigma) < 5 * sigma / np.sqrt(2 * n)
    assert out == lognormal_variability(big, sigma, seed=42)
    assert out != lognormal_variability(big, sigma, seed=43)
    # Wires and periphery are untouched.
    assert (out.r_row, out.r_col, out.r_driver) == (big.r_row, big.r_col, big.r_driver)


def test_lognormal_mean_preserving(big: Crossbar) -> None:
    sigma = 0.5
    ratio = lognormal_variability(big, sigma, seed=1, preserve_mean=True).conductance / \
        big.conductance
    # E[exp(σz - σ²/2)] = 1; Var = exp(σ²) - 1.
    se = np.sqrt((np.exp(sigma**2) - 1) / ratio.size)
    assert abs(ratio.mean() - 1.0) < 5 * se


def test_lognormal_zero_sigma_and_open_cells() -> None:
    xbar = Crossbar([[0.0, 1e-5]], r_row=1.0, r_col=1.0)
    assert lognormal_variability(xbar, 0.0, seed=3) == xbar
    assert lognormal_variability(xbar, 1.0, seed=3).conductance[0, 0] == 0.0


def test_stuck_at_fault_fractions(big: Crossbar) -> None:
    p_on, p_off = 0.02, 0.05
    out, mask = stuck_at_faults(big, p_on, p_off, g_on=2e-4, g_off=1e-7, seed=7,
                                return_mask=True)
    n = mask.size
    for value, p in ((1, p_on), (-1, p_off)):
        frac = np.mean(mask == value)
        assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert np.all(out.conductance[mask == 1] == 2e-4)
    assert np.all(out.conductance[mask == -1] == 1e-7)
    np.testing.assert_array_equal(out.conductance[mask == 0], big.conductance[mask == 0])
    again, mask2 = stuck_at_faults(big, p_on, p_off, g_on=2e-4, g_off=1e-7, seed=7,
                                   return_mask=True)
    assert again == out and np.array_equal(mask, mask2)


def test_stuck_at_defaults_to_array_extremes() -> None:
    xbar = Crossbar([[1e-6, 5e-5, 1e-4]], r_row=1.0, r_col=1.0)
    assert np.all(stuck_at_faults(xbar, 1.0, 0.0, seed=0).conductance == 1e-4)
    assert np.all(stuck_at_faults(xbar, 0.0, 1.0, seed=0).conductance == 1e-6)


def test_quantization_error_bound_and_levels(big: Crossbar) -> None:
    k = 16
    out = quantize_conductance(big, k)
    levels = np.linspace(big.conductance.min(), big.conductance.max(), k)
    step = levels[1] - levels[0]
    assert set(np.unique(out.conductance)) <= set(levels)
    assert np.abs(out.conductance - big.conductance).max() <= step / 2 * (1 + 1e-12)
    # Idempotent: quantizing twice changes nothing.
    assert quantize_conductance(out, levels) == out


def test_stochastic_quantization_is_unbiased() -> None:
    levels = np.array([0.0, 1e-5])
    xbar = Crossbar(np.full(BIG, 0.3e-5), r_row=1.0, r_col=1.0)
    out = quantize_conductance(xbar, levels, stochastic=True, seed=5)
    frac_up = np.mean(out.conductance == 1e-5)
    assert abs(frac_up - 0.3) < 5 * np.sqrt(0.3 * 0.7 / out.conductance.size)
    assert out == quantize_conductance(xbar, levels, stochastic=True, seed=5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: lognormal_variability(x, -0.1), "sigma"),
        (lambda x: lognormal_variability(x, float("nan")), "sigma"),
        (lambda x: stuck_at_faults(x, -0.1, 0.0), r"p_stuck_on must be a probability"),
        (lambda x: stuck_at_faults(x, 0.0, 1.5), r"p_stuck_off must be a probability"),
        (lambda x: stuck_at_faults(x, 0.6, 0.6), r"<= 1"),
        (lambda x: stuck_at_faults(x, 0.1, 0.1, g_on=-1.0), "g_on"),
        (lambda x: quantize_conductance(x, 1), "levels must be an integer >= 2"),
        (lambda x: quantize_conductance(x, [1e-5, 1e-6]), "strictly increasing"),
        (lambda x: quantize_conductance(x, [-1e-6, 1e-6]), ">= 0"),
        (lambda x: quantize_conductance(x, 4, g_off=2.0, g_on=1.0), "g_off <= g_on"),
        (lambda x: lognormal_variability("not a crossbar", 0.1), "Crossbar"),
    ],
)
def test_invalid_parameters(call, match: str) -> None:
    xbar = Crossbar(np.full((2, 2), 1e-5), r_row=1.0, r_col=1.0)
    with pytest.raises(SpecError, match=match):
        call(xbar)


def test_presets_build_the_cited_values() -> None:
    aihw = get_preset("aihwkit_ir_drop")
    # aihwkit's ir_drop_g_ratio is the wire conductance over the device's maximum.
    assert 1.0 / aihw.r_row / aihw.g_on == pytest.approx(1.0 / 0.35 / 5e-6, rel=1e-15)
    neuro = get_preset("neurosim_rram_40nm")
    assert 1 / neuro.g_on == pytest.approx(100e3) and 1 / neuro.g_off == pytest.approx(10e6)
    # NeuroSim: Rho / (w² AR) x 4w at w = 40 nm.
    assert neuro.r_row == pytest.approx(4 * 4.03e-8 / (1.9 * 40e-9), rel=1e-12)
    for preset in PRESETS.values():
        xbar = preset.crossbar(8, 6, density=0.5, seed=1)
        assert set(np.unique(xbar.conductance)) <= {preset.g_on, preset.g_off}
        assert preset.source
    with pytest.raises(SpecError, match="unknown preset"):
        get_preset("nope")
