"""``read_deck`` on hand-written decks, against closed forms, ngspice and our solvers.

The decks here were written by hand, not by our deck writer: other node names,
elements in another order, upper/lower case, ``.param`` arithmetic, SPICE suffixes,
continuation lines, comments and ``.include``. Tolerances:

* closed forms: 1e-12 relative (a direct sparse solve of a tiny network);
* ngspice (same deck, binary rawfile): every node voltage within 1e-11 V and every
  source current within 1e-11 of the largest |current| (observed about 1e-14);
* the word line's cosh closed form and the ``"reference"`` backend on a crossbar
  deck: 1e-10 relative.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.devices import Sinh
from xbar_circuit.errors import InputError, XbarError
from xbar_circuit.netlists import (
    DeckParseError,
    NetlistError,
    OperatingPoint,
    parse_value,
    read_deck,
    run_deck,
    write_deck,
)

HAVE_NGSPICE = shutil.which("ngspice") is not None
needs_ngspice = pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice not installed")

DIVIDER = """\
* the title line: a divider with a load, hand-written
.PARAM rtop = 2.5k  rbot={rtop*3}   ; arithmetic on an earlier parameter
.param vs = '1.2'
Rload OUT gnd 10MEG
R_bottom out 0 {rbot}
Vsupply Top 0 DC {vs}
R_TOP top
+ out
+ {rtop}                      $ continuation lines and a $ comment
.op
.end
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _ngspice(deck_text: str) -> dict[str, float]:
    return run_deck(deck_text, mode="subprocess", keep_files=False).values


def _assert_matches_ngspice(op: OperatingPoint, values: dict[str, float]) -> None:
    ours = {f"v({k})": v for k, v in op.voltages.items()}
    ours |= {f"i({k})": v for k, v in op.currents.items()}
    assert set(ours) == set(values)
    i_scale = max([abs(v) for k, v in values.items() if k.startswith("i(")] + [1e-300])
    for key, value in values.items():
        tol = 1e-11 if key.startswith("v(") else 1e-11 * i_scale
        assert abs(ours[key] - value) <= tol, (key, ours[key], value)


def test_suffixes() -> None:
    cases = {"1k": 1e3, "2.5meg": 2.5e6, "2.5MEG": 2.5e6, "10u": 1e-5, "10uF": 1e-5,
             "3mil": 76.2e-6, "-4m": -4e-3, "1e3k": 1e6, ".5n": 5e-10, "7p": 7e-12,
             "2f": 2e-15, "1g": 1e9, "1t": 1e12, "100ohm": 100.0, "5V": 5.0}
    for text, expected in cases.items():
        assert parse_value(text) == pytest.approx(expected, rel=1e-15), text
    assert parse_value("10u") == 1e-05  # scaled exactly, not 10 * 1e-6
    assert parse_value("{2*(r+1k)/4 - 2^3}", {"r": 1000.0}) == 992.0


def test_divider_matches_closed_form(tmp_path: Path) -> None:
    net = read_deck(_write(tmp_path, "divider.cir", DIVIDER))
    assert net.title.startswith("* the title line")
    assert net.params == {"rtop": 2500.0, "rbot": 7500.0, "vs": 1.2}
    assert net["r_top"].nodes == ("top", "out") and net["R_TOP"].value == 2500.0
    op = net.operating_point()
    r_bottom = 7500.0 * 10e6 / (7500.0 + 10e6)
    expected = 1.2 * r_bottom / (2500.0 + r_bottom)
    assert op.voltages["out"] == pytest.approx(expected, rel=1e-12)
    assert op.voltages["top"] == 1.2 and set(op.voltages) == {"out", "top"}
    # ngspice's sign: current into the + node of a source that delivers power is < 0.
    assert op.currents["vsupply"] == pytest.approx(-1.2 / (2500.0 + r_bottom), rel=1e-12)


@needs_ngspice
def test_divider_matches_ngspice(tmp_path: Path) -> None:
    path = _write(tmp_path, "divider.cir", DIVIDER)
    _assert_matches_ngspice(read_deck(path).operating_point(), _ngspice(DIVIDER))


BRIDGE = """bridge with a current source, a VCVS and an include
.include parts/values.inc
I1 0 n_a {ia}
Ra n_a 0 1k
E1 amp 0 n_a 0 {gain}
Ramp amp b 2k
Rb b 0 2K
.inc parts/more.inc
.end
"""
VALUES = """* included: parameters only
.param ia=1m gain=3
"""
MORE = """* included second: one more resistor between the two halves
Rx n_a b 10k
"""


def _bridge(tmp_path: Path) -> Path:
    (tmp_path / "parts").mkdir()
    _write(tmp_path / "parts", "values.inc", VALUES)
    _write(tmp_path / "parts", "more.inc", MORE)
    return _write(tmp_path, "bridge.cir", BRIDGE)


def test_include_current_source_and_vcvs_closed_form(tmp_path: Path) -> None:
    op = read_deck(_bridge(tmp_path)).operating_point()
    # Unknowns a = V(n_a), b = V(b); V(amp) = 3a.
    # KCL n_a: 1e-3 = a/1k + (a - b)/10k ; KCL b: (3a - b)/2k = b/2k + (b - a)/10k
    matrix = np.array([[1 / 1e3 + 1 / 1e4, -1 / 1e4],
                       [-3 / 2e3 - 1 / 1e4, 2 / 2e3 + 1 / 1e4]])
    a, b = np.linalg.solve(matrix, [1e-3, 0.0])
    assert op.voltages["n_a"] == pytest.approx(a, rel=1e-12)
    assert op.voltages["b"] == pytest.approx(b, rel=1e-12)
    assert op.voltages["amp"] == pytest.approx(3 * a, rel=1e-12)
    # The E source delivers the current that flows through Ramp: (3a - b)/2k, out of +.
    assert op.currents["e1"] == pytest.approx(-(3 * a - b) / 2e3, rel=1e-12)


@needs_ngspice
def test_include_deck_matches_ngspice(tmp_path: Path) -> None:
    net = read_deck(_bridge(tmp_path))
    _assert_matches_ngspice(net.operating_point(), _ngspice(net.to_deck()))


def _word_line_deck(n: int, r: float, g: float, v_in: float) -> str:
    """One word line, written the other way round: cells first, then the wire."""
    lines = [f"word line of {n} cells, cells listed first"]
    lines += [f"GCELL{k} W{k} 0 {1 / g!r}".replace("GCELL", "Rcell") for k in range(n, 0, -1)]
    lines += [f"Rseg{k} W{k - 1} W{k} {r!r}" for k in range(n, 0, -1)]
    lines += [f"Vdrive W0 0 {v_in!r}", ".end"]
    return "\n".join(lines) + "\n"


def test_word_line_matches_the_cosh_closed_form(tmp_path: Path) -> None:
    n, r, g, v_in = 64, 2.0, 1e-3, 0.3
    op = read_deck(_write(tmp_path, "wl.cir", _word_line_deck(n, r, g, v_in))).operating_point()
    theta = math.acosh(1 + r * g / 2)
    for k in range(1, n + 1):
        expected = v_in * math.cosh((n + 0.5 - k) * theta) / math.cosh((n + 0.5) * theta)
        assert op.voltages[f"w{k}"] == pytest.approx(expected, rel=1e-10)


def test_our_crossbar_deck_matches_the_reference_backend(tmp_path: Path) -> None:
    xbar = Crossbar.random(12, 9, r_row=1.5, r_col=0.5, r_driver=20.0, r_sense=0.0, seed=3)
    v_in = np.random.default_rng(3).uniform(-0.3, 0.3, 12)
    op = read_deck(_write(tmp_path, "x.cir", write_deck(xbar, v_in))).operating_point()
    ref = solve(xbar, v_in, backend="reference")
    currents = np.array([op.currents[f"vtia_{j}"] for j in range(9)])
    scale = np.abs(ref.column_currents).max()
    assert np.max(np.abs(currents - ref.column_currents)) <= 1e-10 * scale
    rows = np.array([[op.voltages[f"r_{i}_{j}"] for j in range(9)] for i in range(12)])
    assert np.max(np.abs(rows - ref.row_voltages)) <= 1e-10


def test_sinh_b_source_deck_matches_the_reference_newton(tmp_path: Path) -> None:
    xbar = Crossbar.random(6, 5, r_row=1.0, r_col=1.0, r_driver=5.0, r_sense=5.0, seed=4,
                           device=Sinh(k=3.0))
    v_in = np.full(6, 0.4)
    op = read_deck(_write(tmp_path, "s.cir", write_deck(xbar, v_in))).operating_point()
    assert op.iterations > 1
    ref = solve(xbar, v_in, backend="reference")
    currents = np.array([op.currents[f"vtia_{j}"] for j in range(5)])
    assert np.max(np.abs(currents - ref.column_currents)) <= 1e-9 * np.abs(
        ref.column_currents).max()


@needs_ngspice
def test_b_source_with_params_matches_ngspice(tmp_path: Path) -> None:
    deck = """diode-like sinh element between two resistors
.param i0=1u v0=50m
V1 in 0 0.6
R1 in mid 1k
B1 mid out I={i0}*sinh(V(mid,out)/{v0})
R2 out 0 2k
.op
.end
"""
    net = read_deck(_write(tmp_path, "b.cir", deck))
    op = net.operating_point()
    i_b = 1e-6 * math.sinh((op.voltages["mid"] - op.voltages["out"]) / 0.05)
    assert i_b == pytest.approx(op.voltages["out"] / 2e3, rel=1e-9)  # KCL at out
    _assert_matches_ngspice(op, _ngspice(net.to_deck()))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("text", "line", "token"),
    [("t\nR1 a 0 1k\nR2 a 0 {nope*2}\n", 3, "{nope*2}"),
     ("t\nR1 a 0 1k\n.param x 5\n", 3, "x"),
     ("t\nV1 a 0 PULSE(0 1 1n)\nR1 a 0 1\n", 2, "PULSE(0"),
     ("t\nR1 a 0\n", 2, "R1"),
     ("t\nR1 a 0 1k\n.tran 1n 1u\n", 3, ".tran"),
     ("t\nR1 a 0 1k\nR1 a 0 2k\n", 3, "R1"),
     ("t\nR1 a 0 1k\n.include missing.inc\n", 3, "missing.inc"),
     ("t\nB1 a 0 I=V(a,c)*2\nR1 a 0 1\n", 2, "V(a,c)")],
)
def test_parse_errors_name_file_line_and_token(tmp_path: Path, text: str, line: int,
                                               token: str) -> None:
    path = _write(tmp_path, "bad.cir", text)
    with pytest.raises(DeckParseError) as info:
        read_deck(path)
    error = info.value
    assert isinstance(error, InputError) and isinstance(error, XbarError)
    assert error.path == str(path) and error.line == line and error.token == token
    assert f"{path}:{line}" in str(error) and repr(token) in str(error)


def test_control_lines_and_line_separators_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "ctl.cir", "t\nR1 a 0 1k\nV1 a 0 1\n.control\nshell touch x\n"
                                       ".endc\n")
    with pytest.raises(DeckParseError, match=r"ctl\.cir:4.*\.control"):
        read_deck(path)
    path = _write(tmp_path, "sep.cir", "t\nR1 a 0 1k\u2028.control\nV1 a 0 1\n")
    with pytest.raises(DeckParseError, match=r"sep\.cir:2.*U\+2028"):
        read_deck(path)


def test_unknown_elements_are_reported_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "u.cir", "t\nV1 a 0 1\nM1 a b 0 0 nch\nR1 a b 1k\nD3 b 0 dmod\n"
                                     ".model dmod d\n")
    with pytest.raises(NetlistError, match="m1, d3") as info:
        read_deck(path)
    assert info.value.names == ["m1", "d3"]


def test_floating_nodes_are_reported_by_name(tmp_path: Path) -> None:
    deck = "t\nV1 a 0 1\nR1 a 0 1k\nI1 0 island 1m\nR2 island far 5\nC1 a cap 1p\n"
    net = read_deck(_write(tmp_path, "f.cir", deck))
    with pytest.raises(NetlistError, match="floating") as info:
        net.operating_point()
    assert info.value.names == ["cap", "far", "island"]


def test_voltage_source_loops_are_reported_by_name(tmp_path: Path) -> None:
    deck = "t\nV1 a 0 1\nVx a b 0\nL1 b c 1u\nV2 c 0 2\nR1 a 0 1k\n"
    net = read_deck(_write(tmp_path, "l.cir", deck))
    with pytest.raises(NetlistError, match="loop of voltage sources") as info:
        net.operating_point()
    assert sorted(info.value.names) == ["l1", "v1", "v2", "vx"]


def test_include_cycle_and_unreadable_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.inc", ".include b.inc\n")
    _write(tmp_path, "b.inc", ".include a.inc\n")
    with pytest.raises(DeckParseError, match="cycle"):
        read_deck(_write(tmp_path, "top.cir", "t\n.include a.inc\nR1 a 0 1\n"))
    with pytest.raises(DeckParseError, match="cannot read"):
        read_deck(tmp_path / "nope.cir")
    (tmp_path / "latin.cir").write_bytes(b"t\nR1 a 0 1k \xb5\n")
    with pytest.raises(DeckParseError, match="UTF-8"):
        read_deck(tmp_path / "latin.cir")


# ------------------------------------------------------------------ command line
def test_xbar_solve_deck_prints_the_operating_point(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from xbar_circuit.cli import main

    path = _write(tmp_path, "divider.cir", DIVIDER)
    result = CliRunner().invoke(main, ["solve", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    expected = read_deck(path).operating_point()
    assert report["voltages"] == expected.voltages and report["currents"] == expected.currents
    bad = _write(tmp_path, "bad.cir", "t\nR1 a 0 {nope}\n")
    result = CliRunner().invoke(main, ["solve", str(bad)])
    assert result.exit_code == 1 and f"{bad}:2" in result.output and "nope" in result.output


@needs_ngspice
@pytest.mark.parametrize("mode", ["subprocess", "shared"])
def test_xbar_solve_deck_compare_ngspice(tmp_path: Path, mode: str) -> None:
    import json

    from click.testing import CliRunner

    from xbar_circuit.cli import main
    from xbar_circuit.netlists import find_libngspice

    if mode == "shared" and find_libngspice() is None:
        pytest.skip("libngspice missing")
    path = _bridge(tmp_path)
    result = CliRunner().invoke(main, ["solve", str(path), "--compare", "ngspice", "--mode",
                                       mode, "--json"])
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.output)["comparison"]
    assert comparison["agree"] and comparison["names_in_one_only"] == []
    assert comparison["max_node_voltage_difference"] <= 1e-11


def test_graph_is_a_networkx_multigraph_of_the_branches(tmp_path: Path) -> None:
    nx = pytest.importorskip("networkx")
    net = read_deck(_bridge(tmp_path))
    graph = net.graph()
    assert isinstance(graph, nx.MultiGraph)
    assert set(graph.nodes) == {"0", "n_a", "amp", "b"}
    kinds = sorted(d["kind"] for _, _, d in graph.edges(data=True))
    assert kinds == ["e", "i", "r", "r", "r", "r"]
    assert graph.has_edge("0", "n_a") and nx.is_connected(graph)
