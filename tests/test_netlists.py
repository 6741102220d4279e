"""SPICE decks (golden text), the PySpice circuit, the rawfile reader and the cost estimate.

None of these tests needs ngspice, except those marked ``ngspice``.

Regenerate the golden decks after an intended change of the deck format with::

    XBAR_REGEN_GOLDEN=1 pytest tests/test_netlists.py -k golden

and review the diff of ``tests/golden/*.cir`` before committing.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from xbar_circuit import Crossbar, InputError, NgspiceError, SpecError, __version__
from xbar_circuit.netlists import (
    COST_WARNING_CELLS,
    NgspiceCostWarning,
    deck_elements,
    estimate_seconds,
    normalize_name,
    op_values,
    parse_rawfile,
    read_rawfile,
    to_pyspice_circuit,
    warn_if_costly,
    write_deck,
    write_decks,
)

GOLDEN = Path(__file__).parent / "golden"
HAVE_NGSPICE = shutil.which("ngspice") is not None
skip_without_ngspice = pytest.mark.skipif(
    not HAVE_NGSPICE, reason="ngspice executable not on PATH (apt-get install ngspice)"
)

G_2X3 = np.array([[1e-4, 2e-5, 0.0], [5e-6, 3e-5, 7e-5]])
GOLDEN_CASES = {
    "deck_1x1": (Crossbar(np.array([[1e-4]]), r_row=1.0, r_col=2.0, r_driver=10.0,
                          r_sense=20.0), [0.2]),
    "deck_1x1_all_zero": (Crossbar(np.array([[1e-4]]), r_row=0.0, r_col=0.0), [0.2]),
    "deck_2x3": (Crossbar(G_2X3, r_row=1.5, r_col=2.5, r_driver=50.0, r_sense=25.0),
                 [0.3, -0.1]),
    "deck_2x3_zero_periphery": (Crossbar(G_2X3, r_row=1.5, r_col=2.5), [0.3, 0.0]),
    "deck_2x3_zero_row": (Crossbar(G_2X3, r_row=0.0, r_col=2.5, r_driver=50.0), [0.3, 0.2]),
}


def _normalized(deck: str) -> str:
    """The deck with this package's version replaced by a placeholder."""
    return deck.replace(f"xbar-circuit {__version__} ", "xbar-circuit {version} ")


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_decks(name: str) -> None:
    crossbar, v_in = GOLDEN_CASES[name]
    deck = _normalized(write_deck(crossbar, v_in))
    path = GOLDEN / f"{name}.cir"
    if os.environ.get("XBAR_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(deck)
    assert deck == path.read_text(), f"deck differs from {path}; see the module docstring"


def _element_lines(deck: str) -> list[list[str]]:
    return [line.split() for line in deck.splitlines() if line[:1] in ("R", "V")]


def test_deck_structure_counts_and_values() -> None:
    crossbar = Crossbar.random(3, 4, r_row=1.0, r_col=2.0, r_driver=5.0, r_sense=3.0, seed=2)
    g = crossbar.conductance.copy()
    g[1, 2] = 0.0
    crossbar = crossbar.replace(conductance=g)
    deck = write_deck(crossbar, [0.1, 0.2, 0.3])
    lines = _element_lines(deck)
    names = [fields[0] for fields in lines]
    assert len(names) == len(set(n.lower() for n in names)), "element names must be unique"
    m, n = 3, 4
    counts = {p: sum(1 for x in names if x.startswith(p)) for p in
              ("Vin_", "Rdrv_", "Rrow_", "Rcell_", "Rcol_", "Rsns_", "Vtia_")}
    assert counts == {"Vin_": m, "Rdrv_": m, "Rrow_": m * n, "Rcell_": m * n - 1,
                      "Rcol_": m * n, "Rsns_": n, "Vtia_": n}
    assert "Rcell_1_2" not in names  # G = 0: open cell, omitted
    # Cell resistances are 1/G with full precision (they parse back to the same double).
    for fields in lines:
        match = re.fullmatch(r"Rcell_(\d+)_(\d+)", fields[0])
        if match:
            i, j = int(match.group(1)), int(match.group(2))
            assert fields[1:3] == [f"r_{i}_{j}", f"c_{i}_{j}"]
            assert float(fields[3]) == 1.0 / g[i, j]
    # Topology of the convention: first row segment from the driver, last column
    # segment to the sense node, r_sense to the virtual ground, ammeter to ground.
    by_name = {fields[0]: fields[1:] for fields in lines}
    assert by_name["Rdrv_2"][:2] == ["in_2", "drv_2"]
    assert by_name["Rrow_2_0"][:2] == ["drv_2", "r_2_0"]
    assert by_name["Rrow_2_3"][:2] == ["r_2_2", "r_2_3"]
    assert by_name["Rcol_0_1"][:2] == ["c_0_1", "c_1_1"]
    assert by_name["Rcol_2_1"][:2] == ["c_2_1", "sns_1"]
    assert by_name["Rsns_1"][:2] == ["sns_1", "vg_1"]
    assert by_name["Vtia_1"] == ["vg_1", "0", "DC", "0.0"]
    assert by_name["Vin_1"] == ["in_1", "0", "DC", "0.2"]
    assert deck.rstrip().endswith(".op\n.end")


def test_zero_resistances_are_shorts_not_zero_ohm_resistors() -> None:
    crossbar = Crossbar.random(2, 2, r_row=0.0, r_col=0.0, r_driver=0.0, r_sense=0.0, seed=0)
    lines = _element_lines(write_deck(crossbar, [0.1, 0.2]))
    resistors = [fields for fields in lines if fields[0].startswith("R")]
    assert all(float(fields[3]) > 0 for fields in resistors)
    assert {fields[0][:4] for fields in resistors} == {"Rcel"}
    shorts = [fields for fields in lines if re.match(r"V(drv|row|col|sns)_", fields[0])]
    assert len(shorts) == 2 + 4 + 4 + 2
    assert all(fields[3:] == ["DC", "0.0"] for fields in shorts)


def test_deck_title_and_header() -> None:
    crossbar = Crossbar(G_2X3, r_row=1.5, r_col=2.5)
    deck = write_deck(crossbar, [0.1, 0.2], title="my array")
    assert deck.splitlines()[0] == "my array"
    for text in ("M = 2 rows", "N = 3 columns", "r_row    = 1.5 ohm", "r_col    = 2.5 ohm",
                 "r_driver = 0.0 ohm", "r_sense  = 0.0 ohm", "[5e-06, 0.0001] S",
                 f"xbar-circuit {__version__}"):
        assert text in deck
    with pytest.raises(InputError, match="one line of printable text"):
        write_deck(crossbar, [0.1, 0.2], title="two\nlines")


@pytest.mark.parametrize(
    ("v_in", "match"),
    [([0.1], r"shape \(2,\)"), ([[0.1, 0.2]], "write_decks"), ([0.1, np.nan], r"v_in\[1\]")],
)
def test_write_deck_rejects_bad_inputs(v_in, match: str) -> None:
    with pytest.raises(InputError, match=match):
        write_deck(Crossbar(G_2X3, r_row=1.0, r_col=1.0), v_in)


def test_write_deck_rejects_non_crossbar_and_tiny_conductance() -> None:
    with pytest.raises(SpecError, match="Crossbar"):
        write_deck(G_2X3, [0.1, 0.2])  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="too small"):
        write_deck(Crossbar(np.array([[5e-324]]), r_row=1.0, r_col=1.0), [0.1])


def test_write_decks_one_per_vector() -> None:
    crossbar = Crossbar(G_2X3, r_row=1.0, r_col=1.0)
    batch = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    decks = list(write_decks(crossbar, batch, title="case {b}"))
    assert decks == [write_deck(crossbar, v, title=f"case {b}") for b, v in enumerate(batch)]


def test_pyspice_circuit_has_the_deck_elements() -> None:
    pytest.importorskip("PySpice")
    crossbar = Crossbar(G_2X3, r_row=0.0, r_col=2.5, r_driver=50.0)
    circuit = to_pyspice_circuit(crossbar, [0.3, 0.2])
    expected = sum(len(elements) for _, elements in deck_elements(crossbar, [0.3, 0.2]))
    assert len(list(circuit.elements)) == expected == 2 + 2 + 6 + 5 + 6 + 3 + 3
    text = str(circuit)
    deck = write_deck(crossbar, [0.3, 0.2])
    # Same element lines (PySpice writes "V.. a b 0.3" without "DC").
    assert sorted(" ".join(f for f in fields if f != "DC") for fields in _element_lines(deck)) \
        == sorted(" ".join(line.split()) for line in text.splitlines() if line[:1] in "RV")


@pytest.mark.ngspice
@skip_without_ngspice
def test_pyspice_circuit_runs_in_ngspice_like_the_deck() -> None:
    pytest.importorskip("PySpice")
    from xbar_circuit.netlists import run_deck

    crossbar = Crossbar.random(4, 5, r_row=1.0, r_col=2.0, r_driver=0.0, r_sense=3.0, seed=5)
    v_in = np.linspace(-0.2, 0.3, 4)
    circuit_deck = str(to_pyspice_circuit(crossbar, v_in)) + "\n.op\n.end\n"
    a = run_deck(circuit_deck, mode="subprocess").values
    b = run_deck(write_deck(crossbar, v_in), mode="subprocess").values
    assert a.keys() == b.keys()
    for key, value in b.items():
        assert a[key] == pytest.approx(value, rel=1e-14, abs=1e-18), key


# --------------------------------------------------------------------- rawfile
def _raw_header(names: list[tuple[str, str]], points: int, flags: str = "real") -> bytes:
    lines = ["Title: test", "Date: today", "Plotname: Operating Point", f"Flags: {flags}",
             f"No. Variables: {len(names)}", f"No. Points: {points}", "Variables:"]
    lines += [f"\t{k}\t{name}\t{kind}" for k, (name, kind) in enumerate(names)]
    return ("\n".join(lines) + "\n").encode()


def test_rawfile_binary_full_precision_and_leading_note(tmp_path: Path) -> None:
    names = [("v(in)", "voltage"), ("v(r_0_0)", "voltage"), ("i(vtia_0)", "current")]
    values = [0.1, 1 / 3, -np.pi * 1e-7]
    content = (b"Note: No compatibility mode selected!\n\n" + _raw_header(names, 1)
               + b"Binary:\n" + struct.pack("<3d", *values))
    path = tmp_path / "out.raw"
    path.write_bytes(content)
    (plot,) = read_rawfile(path)
    assert plot.plotname == "Operating Point" and plot.names == [n for n, _ in names]
    assert op_values(plot) == {"v(in)": 0.1, "v(r_0_0)": 1 / 3, "i(vtia_0)": -np.pi * 1e-7}


def test_rawfile_ascii_complex_and_several_plots() -> None:
    names = [("frequency", "frequency"), ("v(a)", "voltage")]
    ascii_plot = _raw_header(names, 2) + b"Values:\n 0\t1.0\n\t2.5\n 1\t2.0\n\t-3.5e-3\n"
    complex_plot = (_raw_header(names, 1, "complex") + b"Binary:\n"
                    + struct.pack("<4d", 1.0, 0.0, 0.5, -0.25))
    first, second = parse_rawfile(ascii_plot + complex_plot)
    np.testing.assert_array_equal(first.data, [[1.0, 2.5], [2.0, -3.5e-3]])
    assert second.is_complex and second.data[0, 1] == 0.5 - 0.25j
    with pytest.raises(NgspiceError, match="one operating point"):
        op_values(first)
    with pytest.raises(NgspiceError, match="complex"):
        op_values(second)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a SPICE rawfile"),
        (b"Note: nothing\n", "not a SPICE rawfile"),
        (_raw_header([("v(a)", "voltage")], 1), "no 'Binary:'"),
        (_raw_header([("v(a)", "voltage")], 2) + b"Binary:\n" + struct.pack("<d", 1.0),
         "truncated"),
    ],
)
def test_rawfile_errors(content: bytes, match: str) -> None:
    with pytest.raises(NgspiceError, match=match):
        parse_rawfile(content)


def test_normalize_name() -> None:
    assert normalize_name("V(R_0_1)") == "v(r_0_1)"
    assert normalize_name("vtia_3#branch") == "i(vtia_3)"
    assert normalize_name("c_1_1", "voltage") == "v(c_1_1)"


# ----------------------------------------------------------------- cost estimate
def test_cost_estimate_is_monotonic_and_calibrated() -> None:
    sizes = [1, 8, 32, 48, 64, 65, 96, 128, 256, 512]
    times = [estimate_seconds(s, s) for s in sizes]
    assert all(a < b for a, b in itertools.pairwise(times))
    assert estimate_seconds(32, 32) == pytest.approx(0.15, rel=0.5)
    assert estimate_seconds(128, 128) > 30.0
    assert estimate_seconds(256, 256) > 600.0


def test_cost_warning_only_above_64x64() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_costly(64, 64)
        warn_if_costly(1, COST_WARNING_CELLS)
    with pytest.warns(NgspiceCostWarning, match=r"65x65 .* about \d+ s"):
        warn_if_costly(65, 65)


def test_importing_netlists_and_ngspice_backend_stays_light() -> None:
    code = ("import sys, xbar_circuit.netlists, xbar_circuit.backends.ngspice\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'PySpice', 'matplotlib', 'networkx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_cost_warning_with_klu_only_above_256x256() -> None:
    from xbar_circuit.netlists import COST_WARNING_CELLS_KLU

    assert COST_WARNING_CELLS_KLU == 256 * 256
    with warnings.catch_warnings():
        warnings.simplefilter("error", NgspiceCostWarning)
        warn_if_costly(256, 256, klu=True)
    with pytest.warns(NgspiceCostWarning, match=r"257x257 .*even with KLU"):
        warn_if_costly(257, 257, klu=True)
    # KLU estimates are far below Sparse 1.3's at the same size.
    assert estimate_seconds(128, 128, klu=True) < estimate_seconds(128, 128) / 10
