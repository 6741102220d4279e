"""Periphery and topology variants (linear cells): ours vs ngspice to 1e-9, vs reference."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HAVE_NGSPICE

from xbar_circuit import Crossbar, solve
from xbar_circuit.errors import SpecError
from xbar_circuit.netlists import write_deck
from xbar_circuit.periphery import TIA

needs_ngspice = [pytest.mark.ngspice,
                 pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice is not installed")]


def _segments(m: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 3.0, (m, n))


def _variants(m: int, n: int) -> dict[str, dict]:
    return {
        "per_segment": dict(r_row=_segments(m, n, 1), r_col=_segments(m, n, 2)),
        "sense_top": dict(sense_side="top", r_col=_segments(m, n, 3)),
        "driver_right": dict(driver_side="right", r_row=_segments(m, n, 4)),
        "driver_both": dict(driver_side="both", r_row=_segments(m, n + 1, 5)),
        "driver_both_scalar": dict(driver_side="both"),
        "tia": dict(tia=TIA(gain=1e3, r_feedback=2e4)),
        "sense_load": dict(sense_load=500.0),
        "all": dict(driver_side="both", sense_side="top", tia=TIA(gain=50.0, r_feedback=1e4),
                    r_col=_segments(m, n, 6)),
    }


def _crossbar(m: int, n: int, seed: int, **kw) -> Crossbar:
    options = dict(r_row=1.5, r_col=2.0, r_driver=10.0, r_sense=5.0) | kw
    return Crossbar.random(m, n, g_off=1e-6, g_on=1e-4, seed=seed, **options)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("name", list(_variants(1, 1)))
def test_variant_nodal_matches_reference(name: str) -> None:
    m, n = 20, 17
    xbar = _crossbar(m, n, 3, **_variants(m, n)[name])
    v = np.random.default_rng(3).uniform(-0.3, 0.3, (3, m))
    ref = solve(xbar, v, backend="reference")
    nod = solve(xbar, v, backend="nodal")
    assert _rel(nod.column_currents, ref.column_currents) < 1e-9
    assert np.abs(nod.row_voltages - ref.row_voltages).max() < 1e-9
    assert np.abs(nod.column_voltages - ref.column_voltages).max() < 1e-9
    if xbar.tia is not None:
        assert _rel(nod.tia_output_voltages, ref.tia_output_voltages) < 1e-9
    if xbar.sense_load is not None:
        assert _rel(nod.sense_voltages, ref.sense_voltages) < 1e-9


@pytest.mark.parametrize("name", list(_variants(1, 1)))
@pytest.mark.parametrize("size", [(8, 6), (32, 32)], ids=["8x6", "32x32"])
def test_variant_matches_ngspice(name: str, size: tuple[int, int], request) -> None:
    for mark in needs_ngspice:
        request.applymarker(mark)
    if not HAVE_NGSPICE:
        pytest.skip("ngspice is not installed")
    m, n = size
    xbar = _crossbar(m, n, 7, **_variants(m, n)[name])
    v = np.random.default_rng(7).uniform(0.0, 0.3, m)
    spice = solve(xbar, v, backend="ngspice")
    for backend in ("nodal", "reference"):
        ours = solve(xbar, v, backend=backend)
        assert _rel(ours.column_currents, spice.column_currents) < 1e-9, backend
        assert np.abs(ours.row_voltages - spice.row_voltages).max() < 1e-9
        assert np.abs(ours.column_voltages - spice.column_voltages).max() < 1e-9
        if xbar.tia is not None:
            assert _rel(ours.tia_output_voltages, spice.tia_output_voltages) < 1e-9
        if xbar.sense_load is not None:
            assert _rel(ours.sense_voltages, spice.sense_voltages) < 1e-9


def test_tia_output_sign_and_value() -> None:
    tia = TIA(gain=1e4, r_feedback=1e4)
    xbar = _crossbar(6, 5, 1, tia=tia)
    sol = solve(xbar, np.full(6, 0.2))
    expected = -sol.column_currents * 1e4 * 1e4 / (1 + 1e4)
    assert np.all(sol.tia_output_voltages < 0)
    assert np.allclose(sol.tia_output_voltages, expected, rtol=1e-14)
    assert sol.sense_voltages is None


def test_tia_with_huge_gain_approaches_ideal() -> None:
    base = _crossbar(10, 9, 2)
    v = np.full(10, 0.2)
    ideal = solve(base, v).column_currents
    near = solve(base.replace(tia=TIA(gain=1e12, r_feedback=1e4)), v).column_currents
    assert _rel(near, ideal) < 1e-9


def test_uniform_segment_arrays_equal_scalars() -> None:
    base = _crossbar(9, 7, 5)
    v = np.random.default_rng(5).uniform(0, 0.3, 9)
    arrays = base.replace(r_row=np.full((9, 7), 1.5), r_col=np.full((9, 7), 2.0))
    assert not arrays.is_default_topology
    a = solve(base, v).column_currents
    for backend in ("nodal", "reference"):
        assert _rel(solve(arrays, v, backend=backend).column_currents, a) < 1e-12


def test_mirror_symmetries() -> None:
    """Right drivers = left drivers on the column-mirrored array; top = bottom on the
    row-mirrored array."""
    base = _crossbar(8, 6, 9)
    v = np.random.default_rng(9).uniform(0, 0.3, 8)
    g = base.conductance
    right = solve(base.replace(driver_side="right"), v).column_currents
    mirror = solve(base.replace(conductance=g[:, ::-1]), v).column_currents[::-1]
    assert _rel(right, mirror) < 1e-12
    top = solve(base.replace(sense_side="top"), v).column_currents
    flipped = solve(base.replace(conductance=g[::-1]), v[::-1]).column_currents
    assert _rel(top, flipped) < 1e-12


def test_both_drivers_lose_less_than_one() -> None:
    base = _crossbar(16, 16, 11)
    v = np.full(16, 0.2)
    assert solve(base.replace(driver_side="both"), v).nf < solve(base, v).nf


def test_variant_deck_shows_op_amp_and_default_deck_unchanged() -> None:
    base = _crossbar(2, 2, 1)
    deck = write_deck(base.replace(tia=TIA(1e3, 1e4)), [0.1, 0.2])
    assert "Eopa_0 out_0 0 0 tin_0 1000.0" in deck
    assert "Rf_0 tin_0 out_0 10000.0" in deck
    assert "Vtia_0 vg_0 tin_0 DC 0.0" in deck
    assert ".options" not in deck                   # linear decks stay default
    assert "VARIANT" not in write_deck(base, [0.1, 0.2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"driver_side": "middle"}, "driver_side must be one of"),
        ({"sense_side": "left"}, "sense_side must be one of"),
        ({"tia": 5.0}, "tia must be"),
        ({"sense_load": 0.0}, "sense_load must be > 0"),
        ({"sense_load": -1.0}, "sense_load must be >= 0"),
        ({"sense_load": 10.0, "tia": TIA(1.0, 1.0)}, "either tia or sense_load"),
        ({"r_row": np.ones((3, 4))}, r"r_row must be a real number of ohms or a per-segment"),
        ({"driver_side": "both", "r_row": np.ones((3, 3))}, r"shape \(3, 4\)"),
        ({"r_col": -np.ones((3, 3))}, "r_col must be finite and >= 0"),
    ],
)
def test_invalid_periphery_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        Crossbar(np.full((3, 3), 1e-4), **(dict(r_row=1.0, r_col=1.0) | kwargs))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"gain": 0.0, "r_feedback": 1.0}, r"TIA\.gain must be finite and > 0"),
     ({"gain": -5.0, "r_feedback": 1.0}, r"TIA\.gain"),
     ({"gain": 10.0, "r_feedback": 0.0}, r"TIA\.r_feedback"),
     ({"gain": float("inf"), "r_feedback": 1.0}, r"TIA\.gain"),
     ({"gain": "big", "r_feedback": 1.0}, r"TIA\.gain must be a real number")],
)
def test_invalid_tia_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        TIA(**kwargs)


def test_json_versions(tmp_path) -> None:
    default = _crossbar(3, 3, 0)
    assert default.to_dict()["version"] == 1
    assert "device" not in default.to_dict()
    for kw in _variants(3, 3).values():
        xbar = _crossbar(3, 3, 0, **kw)
        data = xbar.to_dict()
        assert data["version"] == 2
        assert Crossbar.from_json(xbar.to_json()) == xbar
    data = default.to_dict()
    data["tia"] = None
    with pytest.raises(SpecError, match=r"version 1\) has unknown field"):
        Crossbar.from_dict(data)


def test_committed_v1_specs_still_load() -> None:
    from pathlib import Path

    import xbar_circuit.validation

    # The corpus as installed with the package (also what a non-editable install ships).
    folder = Path(xbar_circuit.validation.__file__).parent / "references"
    specs = sorted(folder.glob("c*/spec.json"))
    assert specs
    for path in specs:
        xbar = Crossbar.load(path)
        if '"version": 1' in path.read_text():
            assert xbar.is_default_topology


def test_zero_ohm_loop_with_both_drivers() -> None:
    xbar = _crossbar(3, 3, 0, r_row=0.0, r_driver=0.0, driver_side="both")
    v = np.full(3, 0.2)
    ideal_rows = solve(xbar.replace(driver_side="left"), v).column_currents
    for backend in ("nodal", "reference"):   # merged nodes: the rows sit at V[i]
        assert _rel(solve(xbar, v, backend=backend).column_currents, ideal_rows) < 1e-12
    with pytest.raises(SpecError, match="loop of 0 V sources"):
        write_deck(xbar, v)
