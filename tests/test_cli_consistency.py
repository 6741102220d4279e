"""The conventions every ``xbar`` command shares (docs/getting-started.md, "Command-line
conventions"): --g-off/--g-on, -o FILE vs --out-dir DIR, --json, --quiet, -v, logging
and progress on standard error only, numbers with units."""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import warnings
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from xbar_circuit import Crossbar, solve
from xbar_circuit._cli_common import cli_session, format_si, format_si_list
from xbar_circuit.cli import main

HAVE_NGSPICE = shutil.which("ngspice") is not None
ROOT = Path(__file__).resolve().parent.parent


def run(*args: str):
    """Invoke ``xbar ARGS``; stdout and stderr stay separate (click >= 8.2)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    rng = np.random.default_rng(0)
    path = folder / "w.npz"
    np.savez(path, a=rng.normal(size=(20, 6)), b=rng.normal(size=(12, 5)),
             c=rng.normal(size=(9, 4)))
    return path


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> Path:
    """A small lookup table (16 points, well under a second)."""
    folder = tmp_path_factory.mktemp("table")
    sweep = folder / "sweep.json"
    sweep.write_text(json.dumps({
        "grid": {"rows": [8, 16], "cols": [8, 16], "r_row": [1.0, 2.0], "r_col": [1.0],
                 "r_driver": [0.0], "r_sense": [0.0], "g_on": 1e-4, "g_off": 1e-6,
                 "density": [0.2, 0.5]},
        "samples": 1, "seed": 3, "inputs": {"pattern": "ones", "v_read": 0.2}}))
    result = run("calibrate", sweep, "-o", folder / "t.nc", "--serial", "--no-ngspice-check",
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["points"] == 16 and report["computed"] == 16 and report["seconds"] > 0
    return folder / "t.nc"


# ------------------------------------------------------------------ every command
def _commands() -> list[str]:
    with click.Context(main) as ctx:
        return main.list_commands(ctx)


def test_every_command_takes_json_quiet_and_verbose() -> None:
    names = _commands()
    assert {"calibrate", "info", "map", "netlist", "plot", "solve", "validate"} <= set(names)
    with click.Context(main) as ctx:
        for name in names:
            command = main.get_command(ctx, name)
            assert command is not None
            flags = {opt for param in command.params for opt in param.opts}
            assert {"--json", "--quiet", "-q", "--verbose", "-v"} <= flags, name


@pytest.mark.parametrize("name", ["map", "plot"])
def test_commands_writing_several_files_take_out_dir_and_no_short_o(name) -> None:
    with click.Context(main) as ctx:
        command = main.get_command(ctx, name)
    visible = {opt for param in command.params if not getattr(param, "hidden", False)
               for opt in param.opts}
    assert "--out-dir" in visible and "-o" not in visible


@pytest.mark.parametrize("name", ["netlist", "calibrate"])
def test_short_o_is_always_one_output_file(name) -> None:
    with click.Context(main) as ctx:
        command = main.get_command(ctx, name)
    (param,) = [p for p in command.params if "-o" in p.opts]
    assert "--output" in param.opts
    assert isinstance(param.type, click.Path) and not param.type.dir_okay


# ------------------------------------------------------------------ g_on / g_off
def test_solve_json_equals_v_dot_g_without_wire_resistance(tmp_path) -> None:
    spec = tmp_path / "spec.json"
    result = run("solve", "--random", "5x7", "--seed", "4", "--r-row", "0", "--r-col", "0",
                 "--g-off", "2e-6", "--g-on", "5e-5", "--v-in", "0.3", "--save-spec", spec,
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    xbar = Crossbar.load(spec)
    assert xbar.conductance.min() >= 2e-6 and xbar.conductance.max() <= 5e-5
    currents = np.array(report["backends"]["nodal"]["column_currents"])
    np.testing.assert_allclose(currents, np.full(5, 0.3) @ xbar.conductance, rtol=1e-12)
    exact = solve(xbar, np.full(5, 0.3)).column_currents
    assert currents.tolist() == exact.tolist()  # full precision, not rounded for display


def test_deprecated_g_min_g_max_give_the_same_array_and_name_the_new_options(tmp_path) -> None:
    new = run("solve", "--random", "6x4", "--seed", "2", "--g-off", "1e-7", "--g-on", "1e-5",
              "--json")
    old = run("solve", "--random", "6x4", "--seed", "2", "--g-min", "1e-7", "--g-max", "1e-5",
              "--json")
    assert new.exit_code == old.exit_code == 0, old.output
    a, b = json.loads(new.stdout), json.loads(old.stdout)
    assert a["backends"]["nodal"]["column_currents"] == \
        b["backends"]["nodal"]["column_currents"]
    assert new.stderr == ""
    lines = old.stderr.splitlines()
    assert lines == ["xbar: warning: --g-min is deprecated, use --g-off (same meaning)",
                     "xbar: warning: --g-max is deprecated, use --g-on (same meaning)"]
    deck_new = run("netlist", "--random", "3x3", "--g-on", "2e-5", "--json")
    deck_old = run("netlist", "--random", "3x3", "--g-max", "2e-5", "--json")
    assert json.loads(deck_new.stdout)["deck"] == json.loads(deck_old.stdout)["deck"]
    assert "--g-on" in deck_old.stderr


def test_old_and_new_conductance_names_together_are_refused() -> None:
    result = run("solve", "--random", "3x3", "--g-off", "1e-6", "--g-min", "1e-7")
    assert result.exit_code == 2 and "give only --g-off" in result.stderr


def test_help_and_errors_use_the_new_names() -> None:
    help_text = run("solve", "--help").stdout
    assert "--g-off" in help_text and "OFF (lowest) conductance (S)" in help_text
    assert "ON (highest) conductance (S)" in help_text
    assert "--g-min" not in help_text and "--g-max" not in help_text
    conflict = run("solve", "--random", "4x4", "--preset", "aihwkit_ir_drop", "--g-max", "1e-5")
    assert conflict.exit_code == 2 and "conflicts with --g-on" in conflict.stderr


# ------------------------------------------------------------------ -o and --out-dir
def test_map_refuses_short_o_with_a_hint(weights_file, tmp_path) -> None:
    result = run("map", weights_file, "--no-transpose", "--no-plots", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "--out-dir" in result.stderr and "single output file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_map_out_dir_writes_the_report_and_json_lists_it(weights_file, tmp_path) -> None:
    out = tmp_path / "mapped"
    result = run("map", weights_file, "--no-transpose", "--tile", "8x8", "--layouts",
                 "naive,mdm", "--no-plots", "--out-dir", out, "--json", "--serial")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["out_dir"] == str(out) and report["files"] == [str(out / "report.json")]
    saved = json.loads((out / "report.json").read_text())
    assert saved["layers"]["a"]["mdm"]["bw_error_allon"] == \
        report["layers"]["a"]["mdm"]["bw_error_allon"]
    assert set(report["layers"]) == {"a", "b", "c"}


def test_plot_out_dir_and_its_deprecated_alias(table_file, tmp_path) -> None:
    refused = run("plot", table_file, "-o", tmp_path / "x")
    assert refused.exit_code == 2 and "--out-dir" in refused.stderr
    new = run("plot", table_file, "--out-dir", tmp_path / "new", "--json",
              "--at", '{"rows": 9}')
    assert new.exit_code == 0, new.output
    report = json.loads(new.stdout)
    assert [Path(p).name for p in report["files"]] == ["table_nf_vs_size.png",
                                                        "table_cell_loss.png"]
    assert all(Path(p).is_file() and Path(p).parent == tmp_path / "new"
               for p in report["files"])
    assert report["at"]["rows"] == 8.0 and report["at"]["r_row"] in (1.0, 2.0)
    assert report["notes"] == ["rows=9 -> 8 (nearest grid value)"]
    assert "xbar: --at rows=9 -> 8 (nearest grid value)" in new.stderr
    old = run("plot", table_file, "--outdir", tmp_path / "old")
    assert old.exit_code == 0, old.output
    assert old.stdout.split() == [str(tmp_path / "old" / "table_nf_vs_size.png"),
                                  str(tmp_path / "old" / "table_cell_loss.png")]
    assert "--outdir is deprecated, use --out-dir" in old.stderr


# ------------------------------------------------------------------ --json
def test_netlist_json(tmp_path) -> None:
    result = run("netlist", "--random", "3x4", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["cols"], report["output"]) == (3, 4, None)
    assert report["deck"].rstrip().endswith(".end")
    out = tmp_path / "deck.cir"
    written = run("netlist", "--random", "3x4", "-o", out, "--json")
    report = json.loads(written.stdout)
    assert report["output"] == str(out) and report["deck"] is None
    assert out.read_text() == json.loads(result.stdout)["deck"]


def test_info_json() -> None:
    from xbar_circuit import __version__
    from xbar_circuit.backends import BACKENDS

    result = run("info", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == __version__ and report["backends"] == list(BACKENDS)
    assert report["ngspice"]["executable"] == shutil.which("ngspice")
    assert set(report["ngspice"]["modes"]) == {"subprocess", "shared"}
    if HAVE_NGSPICE:
        assert report["ngspice"]["modes"]["subprocess"]["version"].startswith("ngspice")


def test_validate_json_reports_each_check(tmp_path) -> None:
    result = run("validate", "nodal", "--quick", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["n_failed"] == 0
    assert report["n_checks"] == len(report["checks"]) > 5
    assert all(check["passed"] and check["backend"] == "nodal" for check in report["checks"]
               if check["family"] == "ngspice corpus")
    assert result.stderr == ""  # no progress bar when stderr is not a terminal with --json


def test_validate_json_exits_1_on_a_failed_check(monkeypatch) -> None:
    import xbar_circuit.validation as validation

    real = validation.run_validation

    def one_failure(*args, **kwargs):
        rows = real(*args, **kwargs)
        rows[0].passed = False
        return rows

    monkeypatch.setattr(validation, "run_validation", one_failure)
    result = run("validate", "nodal", "--quick", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["n_failed"] == 1
    assert report["checks"][0]["passed"] is False


# ------------------------------------------------------------------ --quiet, -v, logging
@pytest.mark.parametrize("args", [
    ["solve", "--random", "4x4"],
    ["netlist", "--random", "3x3", "-o", "{tmp}/d.cir"],
    ["map", "{weights}", "--no-transpose", "--tile", "8x8", "--layouts", "mdm", "--no-plots",
     "--out-dir", "{tmp}/m", "--serial"],
    ["validate", "nodal", "--quick"],
    ["info"],
])
def test_quiet_leaves_stderr_empty_and_results_on_stdout(args, tmp_path, weights_file) -> None:
    args = [a.format(tmp=tmp_path, weights=weights_file) for a in args]
    loud = run(*args)
    quiet = run(*args, "--quiet")
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert quiet.stdout.strip() or args[0] == "netlist"
    if args[0] in ("netlist", "map"):  # their info lines ("wrote ...", "orientation: ...")
        assert loud.stderr.startswith("xbar: ") or "map:" in loud.stderr
    if args[0] == "map":  # the progress bar
        assert re.search(r"map: +\d+%.*/3 ", loud.stderr)  # 3 matrices; 100% not always drawn
        assert "orientation:" in loud.stderr
    if args[0] == "validate":
        assert "corpus" in loud.stderr  # its progress bar


def test_group_level_quiet_and_verbose(tmp_path) -> None:
    out = tmp_path / "d.cir"
    result = run("-q", "netlist", "--random", "3x3", "-o", out)
    assert result.exit_code == 0 and result.stderr == "" and out.is_file()
    loud = run("netlist", "--random", "3x3", "-o", out)
    assert loud.stderr == f"xbar: wrote {out} (3x3 crossbar)\n"
    assert run("-v", "info").exit_code == 0


def test_session_levels_and_restores_loggers(capsys) -> None:
    logger = logging.getLogger("xbar_circuit.some_module")
    before = logging.getLogger("xbar_circuit").level
    with cli_session():
        logger.debug("hidden debug")
        logger.info("shown info")
    with cli_session(quiet=True):
        logger.info("hidden info")
        logger.warning("shown warning")
    with cli_session(verbose=1):
        logging.getLogger("netlists.runner").debug("shown debug")
    err = capsys.readouterr().err
    assert err.splitlines() == ["xbar: shown info", "xbar: warning: shown warning",
                                "xbar: shown debug"]
    assert logging.getLogger("xbar_circuit").level == before
    assert not any(type(h).__name__ == "_EchoHandler"
                   for h in logging.getLogger("xbar_circuit").handlers)


def test_a_warning_repeated_per_tile_is_shown_once(capsys) -> None:
    class TileWarning(UserWarning):
        pass

    with cli_session():
        for tile in range(6):
            warnings.warn(f"tile {tile} outside the table", TileWarning, stacklevel=1)
    err = capsys.readouterr().err.splitlines()
    assert err == ["xbar: warning: TileWarning: tile 0 outside the table",
                   "xbar: warning: TileWarning: 5 more like the above not shown"]
    with cli_session(quiet=True):  # warnings survive --quiet
        warnings.warn("once", TileWarning, stacklevel=1)
    assert capsys.readouterr().err == "xbar: warning: TileWarning: once\n"


def test_map_lut_range_warning_once_for_three_layers(weights_file, table_file, tmp_path):
    result = run("map", weights_file, "--no-transpose", "--tile", "8x8", "--layouts", "mdm",
                 "--no-plots", "--lut", table_file, "--r-row", "5", "--out-dir", tmp_path,
                 "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len([line for line in lines if "LUTRangeWarning" in line]) == 2, lines
    assert lines[-1] == "xbar: warning: LUTRangeWarning: 2 more like the above not shown"
    assert "lie outside the lookup table's grid" in lines[0]


# ------------------------------------------------------------------ progress
def test_calibrate_quiet_implies_no_progress(tmp_path) -> None:
    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps({
        "grid": {"rows": [4], "cols": [4, 8], "r_row": [1.0], "r_col": [1.0],
                 "r_driver": [0.0], "r_sense": [0.0], "g_on": 1e-4, "g_off": 1e-6,
                 "density": [0.5]}, "samples": 1, "seed": 1,
        "inputs": {"pattern": "ones", "v_read": 0.2}}))
    loud = run("calibrate", sweep, "-o", tmp_path / "a.nc", "--serial", "--no-ngspice-check")
    assert loud.exit_code == 0, loud.output
    assert "calibrate" in loud.stderr and "2/2" in loud.stderr  # the bar
    quiet = run("calibrate", sweep, "-o", tmp_path / "b.nc", "--serial", "--no-ngspice-check",
                "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith(f"wrote {tmp_path / 'b.nc'}: 2 points")


@pytest.mark.ngspice
@pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice is not installed")
def test_solve_compare_ngspice_shows_a_stage_on_stderr_only() -> None:
    loud = run("solve", "--random", "4x4", "--compare", "nodal,ngspice")
    assert loud.exit_code == 0, loud.output
    assert "ngspice: solving 4x4 ..." in loud.stderr
    assert re.search(r"ngspice: solving 4x4: done in \d+\.\d\d s", loud.stderr)
    assert "ngspice" not in loud.stderr.replace("ngspice: solving 4x4", "")
    assert "AGREE" in loud.stdout
    quiet = run("solve", "--random", "4x4", "--compare", "nodal,ngspice", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    as_json = run("solve", "--random", "4x4", "--compare", "nodal,ngspice", "--json")
    report = json.loads(as_json.stdout)
    assert report["comparison"]["agree"] is True and as_json.stderr == ""


# ------------------------------------------------------------------ human output
@pytest.mark.parametrize(("value", "unit", "text"), [
    (1.23456e-5, "A", "12.35 µA"), (0.2, "V", "200.0 mV"), (9.99996e-4, "A", "1.000 mA"),
    (-3.2e-9, "A", "-3.200 nA"), (0.0, "A", "0 A"), (1e-4, "S", "100.0 µS"),
    (float("nan"), "A", "nan A"), (12.0, "ohm", "12.00 ohm"), (1.5e-21, "A", "0.001500 aA"),
])
def test_format_si(value, unit, text) -> None:
    assert format_si(value, unit) == text


def test_format_si_list_keeps_the_ends_of_long_vectors() -> None:
    text = format_si_list(np.arange(1, 101) * 1e-6, "A")
    assert text == ("[1.000 µA, 2.000 µA, 3.000 µA, 4.000 µA, ... 92 more ..., 97.00 µA, "
                    "98.00 µA, 99.00 µA, 100.0 µA]")


def test_solve_prints_currents_with_units_and_no_wall_of_numbers() -> None:
    small = run("solve", "--random", "4x4", "--r-row", "0", "--r-col", "0", "--seed", "7")
    assert small.exit_code == 0, small.output
    xbar = Crossbar.random(4, 4, r_row=0.0, r_col=0.0, seed=7)
    line = next(x for x in small.stdout.splitlines() if "column currents" in x)
    shown = re.findall(r"(-?\d+\.\d+) µA", line)
    assert len(shown) == 4
    np.testing.assert_allclose([float(v) * 1e-6 for v in shown],
                               np.full(4, 0.2) @ xbar.conductance, rtol=5e-4)
    assert all(len(v.replace("-", "").replace(".", "").lstrip("0")) >= 4 for v in shown)
    big = run("solve", "--random", "128x128", "-q")
    assert big.exit_code == 0, big.output
    lines = big.stdout.splitlines()
    assert len(lines) < 15 and max(len(x) for x in lines) < 200
    assert "... 120 more ..." in big.stdout and "--json prints every current" in big.stdout


# ------------------------------------------------------------------ the documented examples
def _convention_examples() -> list[str]:
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    section = guide.split("## Command-line conventions", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith(".venv/bin/xbar "):
                lines.append(line[len(".venv/bin/xbar "):])
    return lines


def test_documented_convention_examples_run(tmp_path, monkeypatch) -> None:
    examples = _convention_examples()
    assert len(examples) >= 8
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "weights.npy", np.random.default_rng(1).normal(size=(24, 6)))
    for example in examples:
        if "ngspice" in example and not HAVE_NGSPICE:
            continue
        args = shlex.split(example)
        result = run(*args)
        expect = 2 if ("-o" in args and args[0] == "map") else 0
        assert result.exit_code == expect, (example, result.output)
        if "--json" in args:
            json.loads(result.stdout)
        if "--quiet" in args or "-q" in args:
            assert result.stderr == "", example


def test_an_unavailable_command_still_takes_the_shared_options(monkeypatch) -> None:
    import xbar_circuit.cli as cli

    monkeypatch.setitem(cli.LAZY_COMMANDS, "map", "xbar_circuit.no_such_module:map_command")
    result = run("map", "w.npy", "--json", "-q", "--tile", "8x8")
    assert result.exit_code == 1 and result.stdout == ""
    assert "the 'map' command is unavailable" in result.stderr
