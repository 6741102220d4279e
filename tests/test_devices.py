"""Device models: maths, derivatives, validation, JSON and SPICE text."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.devices import (
    DEVICES,
    AccessTransistor,
    Device,
    Linear,
    OneS1R,
    OneT1R,
    Selector,
    Sinh,
    device_from_dict,
)
from xbar_circuit.errors import SpecError

MODELS = [
    Linear(),
    Sinh(k=3.0),
    Selector(i_0=1e-6, v_0=0.05),
    AccessTransistor(v_th=0.4, k_n=1e-3),
    OneS1R(),
    OneS1R(Selector(1e-5, 0.1), Sinh(2.0)),
    OneT1R(),
    OneT1R(AccessTransistor(0.3, 5e-4), Sinh(4.0), v_gate=0.9),
]


@pytest.mark.parametrize("device", MODELS, ids=lambda d: d.kind)
def test_derivative_matches_finite_difference(device: Device) -> None:
    v = np.linspace(-0.45, 0.45, 37) + 1e-3           # avoid the kinks at exactly 0
    g = np.full_like(v, 5e-5)
    gate = 1.2 if device.uses_gate else None
    h = 1e-7
    numeric = (device.current(v + h, g, gate) - device.current(v - h, g, gate)) / (2 * h)
    analytic = device.conductance(v, g, gate)
    scale = np.abs(analytic).max()
    assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("device", MODELS, ids=lambda d: d.kind)
def test_zero_voltage_zero_current_and_monotone(device: Device) -> None:
    gate = 1.2 if device.uses_gate else None
    assert device.current(0.0, 1e-4, gate) == 0.0
    v = np.linspace(-0.5, 0.5, 101)
    assert np.all(np.diff(device.current(v, 1e-4, gate)) >= 0)


def test_sinh_small_signal_is_programmed_conductance() -> None:
    g = np.array([1e-6, 1e-4])
    assert np.array_equal(Sinh(7.0).conductance(0.0, g), g)
    assert np.allclose(Sinh(2.0).current(0.3, g), g * np.sinh(0.6) / 2.0, rtol=1e-15)


def test_series_composite_conserves_current() -> None:
    dev = OneS1R(Selector(1e-5, 0.1), Sinh(2.0))
    v = np.linspace(-0.4, 0.4, 9)
    g = np.full_like(v, 1e-4)
    u = dev.internal_voltage(v, g)
    i_sel = dev.selector.current(u, g)
    i_mem = dev.memory.current(v - u, g)
    assert np.allclose(i_sel, i_mem, rtol=1e-12, atol=1e-20)
    assert np.allclose(dev.current(v, g), i_mem, rtol=1e-12, atol=1e-20)


def test_transistor_regions() -> None:
    t = AccessTransistor(v_th=0.4, k_n=1e-3)
    # on, triode: i = k (v_ov v - v^2/2); saturation: k v_ov^2 / 2
    assert t.current(0.1, 0, 1.2) == pytest.approx(1e-3 * (0.8 * 0.1 - 0.005), rel=1e-15)
    assert t.current(1.0, 0, 1.2) == pytest.approx(0.5e-3 * 0.64, rel=1e-15)
    # off: no current for v >= v_ov
    assert t.current(0.3, 0, 0.0) == 0.0
    assert t.conductance(0.3, 0, 0.0) == 0.0


def test_one_t1r_gate_off_row_carries_no_current() -> None:
    xbar = Crossbar.random(4, 3, r_row=1.0, r_col=1.0, seed=1, device=OneT1R())
    gates = np.array([1.2, 0.0, 1.2, 0.2])
    for backend in ("reference", "nodal"):
        sol = solve(xbar, np.full(4, 0.2), backend=backend, v_gate=gates)
        # an off row conducts nothing (the inner solve leaves ~1e-20 A of rounding)
        assert np.all(np.abs(sol.cell_currents[1]) < 1e-18)
        assert np.all(np.abs(sol.cell_currents[3]) < 1e-18)
        assert np.all(sol.cell_currents[0] > 0.0)


@pytest.mark.parametrize("device", MODELS, ids=lambda d: d.kind)
def test_json_round_trip(device: Device) -> None:
    data = device.to_dict()
    assert data["type"] in DEVICES
    assert device_from_dict(data) == device
    assert type(device).from_dict(data) == device


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Sinh(k=-1.0), r"Sinh\.k must be finite and > 0"),
        (lambda: Sinh(k=0.0), r"Sinh\.k"),
        (lambda: Sinh(k=float("nan")), r"Sinh\.k"),
        (lambda: Sinh(k="3"), r"Sinh\.k must be a real number"),
        (lambda: Selector(i_0=0.0), r"Selector\.i_0"),
        (lambda: Selector(v_0=-0.1), r"Selector\.v_0"),
        (lambda: AccessTransistor(k_n=0.0), r"AccessTransistor\.k_n"),
        (lambda: AccessTransistor(v_th=float("inf")), r"AccessTransistor\.v_th"),
        (lambda: OneS1R(selector=Linear()), r"OneS1R\.selector"),
        (lambda: OneT1R(memory=Selector()), r"OneT1R\.memory"),
        (lambda: OneT1R(v_gate=float("nan")), r"OneT1R\.v_gate"),
        (lambda: device_from_dict({"type": "memristor"}), "unknown device type"),
        (lambda: device_from_dict({"type": "sinh", "q": 1}), "unknown parameter"),
        (lambda: Crossbar(np.ones((2, 2)) * 1e-4, 1.0, 1.0, device="sinh"), "device must be"),
        (lambda: Crossbar(np.ones((2, 2)) * 1e-4, 1.0, 1.0, device=Selector()),
         "no memory element"),
    ],
)
def test_invalid_parameters_raise(make, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        make()


def test_devices_are_immutable() -> None:
    with pytest.raises(AttributeError):
        Sinh(2.0).k = 3.0  # type: ignore[misc]


def test_spice_elements_are_readable() -> None:
    assert Linear().spice_element("cell_0_1", "r_0_1", "c_0_1", 1e-4) == \
        "Rcell_0_1 r_0_1 c_0_1 10000.0"
    assert Sinh(3.0).spice_element("cell_0_1", "r_0_1", "c_0_1", 1e-4) == \
        "Bcell_0_1 r_0_1 c_0_1 I=0.0001*sinh(3.0*V(r_0_1,c_0_1))/3.0"
    text = OneT1R().spice_element("cell_0_1", "r_0_1", "c_0_1", 1e-4, 1.2)
    assert text.splitlines() == [
        "Mcell_0_1 r_0_1 g_cell_0_1 x_cell_0_1 x_cell_0_1 nacc L=1 W=1",
        "Vgs_cell_0_1 g_cell_0_1 x_cell_0_1 DC 1.2",
        "Rmem_cell_0_1 x_cell_0_1 c_0_1 10000.0",
    ]
    assert OneT1R().spice_models()[0].startswith(".model nacc nmos level=1 vto=0.4 kp=0.001")
    text = OneS1R().spice_element("cell_2_3", "r_2_3", "c_2_3", 1e-4)
    assert text.splitlines()[0] == \
        "Bsel_cell_2_3 r_2_3 x_cell_2_3 I=1e-06*sinh(V(r_2_3,x_cell_2_3)/0.05)"


@pytest.mark.parametrize("backend", ["reference", "nodal"])
def test_linear_limits_reproduce_linear_result(backend: str) -> None:
    base = Crossbar.random(12, 10, r_row=1.0, r_col=1.5, r_driver=5.0, r_sense=5.0, seed=4)
    v = np.random.default_rng(4).uniform(0.0, 0.3, 12)
    linear = solve(base, v, backend="reference").column_currents
    # k -> 0: sinh(kv)/k = v (1 + (kv)^2/6 + ...): k = 1e-4 1/V leaves ~1e-10
    for device, tol in ((Sinh(1e-4), 1e-9),
                        # selector fully on (1e3 S on-conductance in series with <=1e-4 S)
                        (OneS1R(Selector(i_0=1e3, v_0=1.0)), 1e-6),
                        (OneS1R(Selector(i_0=1e3, v_0=1.0), Sinh(1e-4)), 1e-6),
                        # transistor fully on: k_n v_ov = 1e4 S
                        (OneT1R(AccessTransistor(0.4, 1e4), v_gate=1.4), 1e-6)):
        got = solve(base.replace(device=device), v, backend=backend).column_currents
        assert np.abs(got - linear).max() / np.abs(linear).max() < tol, device


def test_crossbar_json_with_device_round_trip(tmp_path) -> None:
    xbar = Crossbar.random(3, 4, r_row=1.0, r_col=2.0, seed=0,
                           device=OneT1R(memory=Sinh(2.0), v_gate=1.0))
    path = tmp_path / "spec.json"
    xbar.save(path)
    back = Crossbar.load(path)
    assert back == xbar
    assert back.to_dict()["version"] == 2
    assert back.device == OneT1R(memory=Sinh(2.0), v_gate=1.0)


@pytest.mark.parametrize("name", ["xbar_circuit.devices", "xbar_circuit.periphery"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
