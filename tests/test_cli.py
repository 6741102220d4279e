"""The ``xbar`` command line: solve, netlist, validate, info."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import xbar_circuit.cli as cli
from xbar_circuit import Crossbar, solve
from xbar_circuit.cli import main

HAVE_NGSPICE = shutil.which("ngspice") is not None


@pytest.fixture
def spec_file(tmp_path):
    xbar = Crossbar.random(6, 5, r_row=2.0, r_col=1.0, r_driver=10.0, r_sense=5.0, seed=3)
    path = tmp_path / "spec.json"
    xbar.save(path)
    return xbar, path


def test_solve_json_matches_the_python_api(spec_file) -> None:
    xbar, path = spec_file
    result = CliRunner().invoke(main, ["solve", str(path), "--backend", "reference", "--json",
                                       "--v-in", "0.25"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    expected = solve(xbar, np.full(6, 0.25), backend="reference")
    np.testing.assert_allclose(report["backends"]["reference"]["column_currents"],
                               expected.column_currents, rtol=1e-15)
    assert report["backends"]["reference"]["nf"] == pytest.approx(expected.nf, rel=1e-15)


def test_solve_compare_reports_agreement(tmp_path) -> None:
    saved = tmp_path / "generated.json"
    result = CliRunner().invoke(main, ["solve", "--random", "8x12", "--density", "0.5",
                                       "--compare", "nodal,reference", "--save-spec", str(saved)])
    assert result.exit_code == 0, result.output
    assert "AGREE" in result.output and "NF" in result.output
    assert Crossbar.load(saved).shape == (8, 12)


def test_compare_exits_3_when_backends_disagree(spec_file, monkeypatch) -> None:
    _, path = spec_file

    def skewed_solve(xbar, v_in, backend="nodal", **options):
        if backend == "reference":  # a backend with a 1e-6 error in one wire
            xbar = xbar.replace(r_row=xbar.r_row * (1 + 1e-6))
        return solve(xbar, v_in, backend=backend, **options)

    monkeypatch.setattr(cli, "solve", skewed_solve)
    result = CliRunner().invoke(main, ["solve", str(path), "--compare", "nodal,reference"])
    assert result.exit_code == 3, result.output
    assert "DISAGREE" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["solve"], "either a SPEC file or --random"),
        (["solve", "--random", "3y4"], "size must look like"),
        (["solve", "--random", "3x4", "--v-in", "nope"], "neither a number"),
        (["solve", "--random", "3x4", "--r-row", "-1"], "r_row must be >= 0"),
        (["solve", "--random", "3x4", "--compare", "nodal"], "two backend names"),
        (["solve", "--random", "3x4", "--backend", "spectre"], "Invalid value"),
    ],
)
def test_user_errors_are_clear(args, message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output


def test_corrupt_spec_file_is_named(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": "xbar-circuit/crossbar", "version": 1, "conductance": [[1]]')
    result = CliRunner().invoke(main, ["solve", str(path)])
    assert result.exit_code == 1
    assert "broken.json" in result.output and "not valid JSON" in result.output


def test_netlist_writes_the_deck(spec_file, tmp_path) -> None:
    xbar, path = spec_file
    out = tmp_path / "deck.cir"
    result = CliRunner().invoke(main, ["netlist", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    deck = out.read_text()
    assert deck.rstrip().endswith(".end")
    cells = [line for line in deck.splitlines() if line.startswith("Rcell")]
    assert len(cells) == np.count_nonzero(xbar.conductance)


@pytest.mark.ngspice
@pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice is not installed")
def test_validate_own_spec_against_ngspice(spec_file) -> None:
    _, path = spec_file
    result = CliRunner().invoke(main, ["validate", "--spec", str(path)])
    assert result.exit_code == 0, result.output
    assert "your spec vs ngspice" in result.output and "pass" in result.output


def test_validate_quick_corpus_passes() -> None:
    result = CliRunner().invoke(main, ["validate", "nodal", "--quick"])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output


def test_preset_sets_wires_and_conductances(tmp_path) -> None:
    saved = tmp_path / "preset.json"
    result = CliRunner().invoke(main, ["solve", "--random", "4x6", "--preset", "aihwkit_ir_drop",
                                       "--save-spec", str(saved), "--backend", "reference"])
    assert result.exit_code == 0, result.output
    xbar = Crossbar.load(saved)
    assert xbar.r_row == 0.35 and xbar.conductance.max() <= 5e-6
    bad = CliRunner().invoke(main, ["solve", "--random", "4x6", "--preset", "nope"])
    assert bad.exit_code == 1 and "unknown preset" in bad.output


def test_info_lists_backends() -> None:
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0
    assert "nodal" in result.output and "ngspice" in result.output


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda p: np.save(p / "v.npy", np.ones((2, 6))), "must hold exactly 6 values"),
        (lambda p: (p / "v.npy").write_bytes(b"\x93NUMPY garbage"), "cannot read 6 volts"),
        (lambda p: np.save(p / "v.npy", np.array([object()] * 6), allow_pickle=True),
         "cannot read 6 volts"),
        (lambda p: (p / "v.json").write_text('{"a": 1}'), "cannot read 6 volts"),
        (lambda p: (p / "v.txt").write_text("0.1 abc"), "cannot read 6 volts"),
        (lambda p: (p / "v.txt").write_text("0.1 0.2"), "must hold exactly 6 values"),
    ],
)
def test_bad_input_files_are_named_before_solving(spec_file, tmp_path, make_file, message):
    _, path = spec_file
    make_file(tmp_path)
    name = next(f for f in tmp_path.iterdir() if f.name.startswith("v."))
    result = CliRunner().invoke(main, ["solve", str(path), "--v-in", str(name)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_unwritable_outputs_and_bad_files_give_clear_errors(spec_file, tmp_path) -> None:
    _, path = spec_file
    missing = tmp_path / "no" / "such" / "dir" / "x.json"
    result = CliRunner().invoke(main, ["solve", str(path), "--save-spec", str(missing)])
    assert result.exit_code == 1 and "cannot write the spec" in result.output
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = CliRunner().invoke(main, ["solve", str(binary)])
    assert result.exit_code == 1 and "not a text (UTF-8 JSON) file" in result.output
    result = CliRunner().invoke(main, ["solve", "--random", "3x3", "--seed", "-1"])
    assert result.exit_code == 2 and "seed" in result.output


def test_timeout_zero_is_rejected_not_ignored(spec_file) -> None:
    _, path = spec_file
    result = CliRunner().invoke(main, ["solve", str(path), "--backend", "ngspice",
                                       "--timeout", "0"])
    assert result.exit_code == 2 and "--timeout must be > 0" in result.output


def test_json_output_stays_valid_with_undefined_nf(spec_file) -> None:
    _, path = spec_file
    result = CliRunner().invoke(main, ["solve", str(path), "--v-in", "0", "--json",
                                       "--backend", "reference"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)  # NaN would not parse as strict JSON
    assert report["backends"]["reference"]["nf"] is None
