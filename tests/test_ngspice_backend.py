"""The ``"ngspice"`` backend against the independent ``"reference"`` solver, and its errors.

Tolerances (both sides solve the same linear network in float64):

* column currents: ``|I_ngspice - I_ref| <= 1e-9 * max|I_ref|`` (relative, per array);
* node voltages: ``|V_ngspice - V_ref| <= 1e-9 V`` (inputs are at most 0.3 V);
* the ammeter current ngspice reports and the sum of its column's cell currents
  agree to the same 1e-9 relative tolerance.

Seen on ngspice 39.3: agreement to about 1e-14 relative in both.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from xbar_circuit import (
    BackendError,
    Crossbar,
    NgspiceError,
    NgspiceNotFoundError,
    NgspiceTimeoutError,
    solve,
)
from xbar_circuit.netlists import (
    NgspiceCostWarning,
    find_libngspice,
    run_deck,
    shared_circuit_count,
    shared_plot_names,
    write_deck,
)
from xbar_circuit.netlists import cost as cost_module
from xbar_circuit.netlists import discovery as discovery_module
from xbar_circuit.netlists import runner as runner_module

HAVE_NGSPICE = shutil.which("ngspice") is not None
try:
    import PySpice  # noqa: F401

    HAVE_SHARED = find_libngspice() is not None
except ImportError:  # pragma: no cover
    HAVE_SHARED = False

skip_without_ngspice = pytest.mark.skipif(
    not HAVE_NGSPICE,
    reason="ngspice executable not on PATH (apt-get install ngspice libngspice0 libngspice0-dev)",
)
skip_without_shared = pytest.mark.skipif(
    not HAVE_SHARED, reason="libngspice or PySpice missing (apt-get install libngspice0-dev)"
)

RTOL_CURRENT = 1e-9
ATOL_VOLTAGE = 1e-9  # volts

BAD_DECK = "bad deck\nV1 in 0 1\nR1 in a 1k foo bar\n.op\n.end\n"
FLOATING_DECK = "floating node\nV1 in 0 1\nR1 in 0 1k\nR2 a b 1k\n.op\n.end\n"


def _inputs(m: int, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.uniform(-0.3, 0.3, size=(batch, m))
    v[0, 0] = 0.0  # a zero input, and both signs
    return v


def _assert_agree(crossbar: Crossbar, v_in: np.ndarray, **options) -> None:
    spice = solve(crossbar, v_in, backend="ngspice", **options)
    ref = solve(crossbar, v_in, backend="reference")
    scale = np.max(np.abs(ref.column_currents))
    np.testing.assert_allclose(spice.column_currents, ref.column_currents, rtol=0,
                               atol=RTOL_CURRENT * scale, err_msg="column currents")
    np.testing.assert_allclose(spice.row_voltages, ref.row_voltages, rtol=0, atol=ATOL_VOLTAGE,
                               err_msg="row-wire node voltages")
    np.testing.assert_allclose(spice.column_voltages, ref.column_voltages, rtol=0,
                               atol=ATOL_VOLTAGE, err_msg="column-wire node voltages")
    # The measured ammeter current equals its column's summed cell currents (KCL).
    cell_sum = spice.cell_currents.sum(axis=-2)
    np.testing.assert_allclose(spice.column_currents, cell_sum, rtol=0,
                               atol=RTOL_CURRENT * scale, err_msg="ammeter vs cell sum")


CASES = [
    # (M, N, r_row, r_col, batch)
    (1, 1, 1.0, 1.0, 2),
    (1, 9, 2.0, 1.0, 1),
    (9, 1, 1.0, 2.0, 1),
    (8, 8, 2.5, 2.5, 2),
    (16, 32, 1.0, 2.0, 1),
    (32, 64, 1.0, 1.0, 1),
]
PERIPHERY = {"ideal periphery": (0.0, 0.0), "resistive periphery": (50.0, 20.0)}


@pytest.mark.ngspice
@skip_without_ngspice
@pytest.mark.parametrize("periphery", sorted(PERIPHERY))
@pytest.mark.parametrize(("m", "n", "r_row", "r_col", "batch"), CASES)
def test_subprocess_matches_reference(m, n, r_row, r_col, batch, periphery) -> None:
    r_driver, r_sense = PERIPHERY[periphery]
    crossbar = Crossbar.random(m, n, r_row=r_row, r_col=r_col, r_driver=r_driver,
                               r_sense=r_sense, seed=m * 100 + n)
    _assert_agree(crossbar, _inputs(m, batch, seed=n), mode="subprocess")


@pytest.mark.ngspice
@skip_without_ngspice
@pytest.mark.parametrize(
    ("m", "n", "r_row", "r_col", "r_driver", "r_sense"),
    [
        (8, 8, 0.0, 2.0, 10.0, 5.0),
        (8, 8, 2.0, 0.0, 0.0, 5.0),
        (8, 8, 0.0, 0.0, 10.0, 0.0),
        (8, 8, 0.0, 0.0, 0.0, 0.0),
        (16, 32, 0.0, 1.0, 0.0, 0.0),
        (32, 64, 1.0, 0.0, 20.0, 10.0),
    ],
)
def test_zero_wire_resistances_match_reference(m, n, r_row, r_col, r_driver, r_sense) -> None:
    crossbar = Crossbar.random(m, n, r_row=r_row, r_col=r_col, r_driver=r_driver,
                               r_sense=r_sense, seed=7)
    _assert_agree(crossbar, _inputs(m, 1, seed=3), mode="subprocess")


@pytest.mark.ngspice
@skip_without_ngspice
def test_all_zero_resistances_give_the_ideal_product() -> None:
    crossbar = Crossbar.random(4, 6, r_row=0.0, r_col=0.0, seed=1)
    v_in = _inputs(4, 2, seed=2)
    spice = solve(crossbar, v_in, backend="ngspice", mode="subprocess")
    np.testing.assert_allclose(spice.column_currents, v_in @ crossbar.conductance,
                               rtol=1e-13, atol=1e-20)


@pytest.mark.ngspice
@skip_without_ngspice
def test_open_cells_and_info() -> None:
    crossbar = Crossbar.random(5, 4, r_row=1.0, r_col=1.0, r_driver=5.0, r_sense=5.0,
                               density=0.5, g_off=0.0, g_on=1e-4, seed=3)
    assert (crossbar.conductance == 0).any()
    v_in = _inputs(5, 2, seed=4)
    _assert_agree(crossbar, v_in)
    spice = solve(crossbar, v_in, backend="ngspice")
    info = spice.info
    assert info["mode"] == "subprocess"  # auto prefers the executable
    assert info["ngspice_version"].startswith("ngspice-")
    assert info["runs"] == 2 and len(info["run_seconds"]) == 2 and info["seconds"] > 0


@pytest.mark.ngspice
@skip_without_ngspice
def test_keep_files_true_keeps_every_deck() -> None:
    crossbar = Crossbar.random(2, 3, r_row=1.0, r_col=1.0, seed=0)
    v_in = _inputs(2, 2, seed=0)
    spice = solve(crossbar, v_in, backend="ngspice", mode="subprocess", keep_files=True)
    info = spice.info
    paths = [Path(p) for p in info["deck_paths"]]
    try:
        assert len(paths) == 2
        for b, path in enumerate(paths):
            klu = spice.info["klu_available"]
            assert path.read_text().splitlines()[1:] == \
                write_deck(crossbar, v_in[b], klu=klu).splitlines()[1:]
            assert (path.parent / "out.raw").exists()
    finally:
        for path in paths:
            shutil.rmtree(path.parent, ignore_errors=True)


# ------------------------------------------------------------------ shared mode
@pytest.mark.ngspice
@skip_without_shared
def test_shared_mode_matches_reference_and_does_not_leak() -> None:
    crossbar = Crossbar.random(8, 8, r_row=2.0, r_col=3.0, r_driver=10.0, r_sense=5.0, seed=8)
    v_in = _inputs(8, 1, seed=8)
    _assert_agree(crossbar, v_in, mode="shared")
    deck = write_deck(crossbar, v_in[0])
    first = run_deck(deck, mode="shared")
    assert first.mode == "shared" and first.version.startswith("ngspice-")
    for _ in range(3):
        again = run_deck(deck, mode="shared")
        assert again.values == first.values  # bit for bit: no state carried over
        assert shared_circuit_count() == 0
        assert shared_plot_names() == ["const"]
    # Shared and subprocess modes read the same doubles.
    if HAVE_NGSPICE:
        sub = run_deck(deck, mode="subprocess").values
        for key, value in sub.items():
            assert first.values[key] == pytest.approx(value, rel=1e-14, abs=1e-18), key


@pytest.mark.ngspice
@skip_without_shared
def test_shared_mode_memory_stays_flat() -> None:
    def rss_mb() -> float:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        pytest.skip("no /proc/self/status")
        return 0.0

    deck = write_deck(Crossbar.random(32, 32, r_row=1.0, r_col=1.0, seed=1), np.full(32, 0.2))
    for _ in range(3):  # warm up allocator pools
        run_deck(deck, mode="shared")
    before = rss_mb()
    for _ in range(10):
        run_deck(deck, mode="shared")
    growth = rss_mb() - before
    # Without remcirc/destroy the library keeps about 5 MB per 32x32 run (52 MB here).
    assert growth < 20, f"RSS grew by {growth:.1f} MB over 10 shared-mode runs"


@pytest.mark.ngspice
@skip_without_shared
def test_shared_mode_bad_deck_raises_and_recovers() -> None:
    with pytest.raises(NgspiceError, match="could not load the deck") as info:
        run_deck(BAD_DECK, mode="shared")
    try:
        assert "unknown parameter" in info.value.output
        assert Path(info.value.deck_path).read_text() == BAD_DECK
    finally:
        shutil.rmtree(Path(info.value.deck_path).parent, ignore_errors=True)
    assert shared_circuit_count() == 0
    result = run_deck("ok\nV1 a 0 1\nR1 a 0 2\n.op\n.end\n", mode="shared", keep_files=False)
    assert result.values["i(v1)"] == -0.5


# ----------------------------------------------------------------------- errors
def test_subprocess_mode_without_ngspice_on_path(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    crossbar = Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0)
    with pytest.raises(NgspiceNotFoundError, match="apt-get install ngspice"):
        solve(crossbar, [0.1, 0.2], backend="ngspice", mode="subprocess")
    with pytest.raises(NgspiceNotFoundError, match="not on PATH"):
        run_deck(write_deck(crossbar, [0.1, 0.2]), mode="subprocess")


def test_auto_mode_without_any_ngspice(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(discovery_module, "find_libngspice", lambda: None)
    crossbar = Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0)
    with pytest.raises(NgspiceNotFoundError, match="libngspice0-dev"):
        solve(crossbar, [0.1, 0.2], backend="ngspice")
    with pytest.raises(NgspiceNotFoundError, match="shared library"):
        solve(crossbar, [0.1, 0.2], backend="ngspice", mode="shared")


@pytest.mark.ngspice
@skip_without_shared
def test_auto_mode_falls_back_to_shared_library(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    crossbar = Crossbar.random(3, 3, r_row=1.0, r_col=1.0, seed=0)
    spice = solve(crossbar, [0.1, 0.2, 0.3], backend="ngspice")
    info = spice.info
    assert info["mode"] == "shared"


@pytest.mark.parametrize(
    ("options", "match"),
    [({"mode": "spice3"}, "unknown ngspice mode"), ({"timeout": -1}, "timeout"),
     ({"timeout": "soon"}, "timeout"), ({"keep_files": "yes"}, "keep_files")],
)
def test_bad_options_raise_backend_error(options, match) -> None:
    crossbar = Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0)
    with pytest.raises(BackendError, match=match):
        solve(crossbar, [0.1, 0.2], backend="ngspice", **options)


@pytest.mark.ngspice
@skip_without_ngspice
@pytest.mark.parametrize(
    ("deck", "match", "in_output"),
    [(BAD_DECK, "exit status 1", "unknown parameter"),
     (FLOATING_DECK, "not a clean solve", "singular matrix")],
)
def test_failing_deck_raises_with_output_and_kept_deck(deck, match, in_output) -> None:
    with pytest.raises(NgspiceError, match=match) as info:
        run_deck(deck, mode="subprocess")
    error = info.value
    try:
        assert error.deck_path is not None and error.deck_path in str(error)
        assert Path(error.deck_path).read_text() == deck
        assert in_output in error.output
    finally:
        shutil.rmtree(Path(error.deck_path).parent, ignore_errors=True)


@pytest.mark.ngspice
@skip_without_ngspice
def test_failing_deck_keep_files_false_leaves_nothing() -> None:
    with pytest.raises(NgspiceError) as info:
        run_deck(BAD_DECK, mode="subprocess", keep_files=False)
    assert info.value.deck_path is None and "unknown parameter" in info.value.output


def _processes_in(directory: str) -> list[int]:
    """Pids whose working directory is ``directory`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == directory:
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.ngspice
@skip_without_ngspice
def test_timeout_kills_ngspice() -> None:
    # 128x128 takes seconds even with KLU, minutes without.
    crossbar = Crossbar.random(128, 128, r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0,
                               seed=0)
    with pytest.raises(NgspiceTimeoutError, match=r"within 0\.2 s and was killed") as info, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", NgspiceCostWarning)
        solve(crossbar, np.full(128, 0.2), backend="ngspice", mode="subprocess", timeout=0.2)
    directory = str(Path(info.value.deck_path).parent)
    try:
        if os.path.isdir("/proc"):
            assert _processes_in(directory) == []
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.ngspice
@skip_without_ngspice
def test_cost_warning_before_a_large_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # The KLU threshold (256x256) is lowered to 64x64 so that the run stays small; the
    # threshold itself is checked without a run in test_netlists.
    monkeypatch.setattr(cost_module, "COST_WARNING_CELLS_KLU", 64 * 64)
    crossbar = Crossbar.random(65, 65, r_row=1.0, r_col=1.0, seed=0)
    with pytest.warns(NgspiceCostWarning, match=r"65x65 .*about \d+ s"), \
            pytest.raises(NgspiceTimeoutError) as info:
        solve(crossbar, np.full(65, 0.2), backend="ngspice", mode="subprocess", timeout=0.05)
    shutil.rmtree(Path(info.value.deck_path).parent, ignore_errors=True)


@pytest.mark.ngspice
@skip_without_ngspice
def test_no_cost_warning_at_64x64_or_below() -> None:
    crossbar = Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NgspiceCostWarning)
        solve(crossbar, [0.1, 0.2], backend="ngspice", mode="subprocess")


@pytest.mark.ngspice
@skip_without_ngspice
@pytest.mark.parametrize("mode", ["subprocess", pytest.param("shared", marks=skip_without_shared)])
def test_title_words_are_not_taken_for_errors(mode) -> None:
    crossbar = Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0)
    deck = write_deck(crossbar, [0.1, 0.2], title="Error: singular matrix? no, a title µ")
    values = run_deck(deck, mode=mode).values
    # 16 node voltages (in, drv, r, c, sns, vg) and 8 branch currents (Vin, Vtia and
    # the 0 V shorts standing for r_driver = 0 and r_sense = 0).
    assert sum(k.startswith("v(") for k in values) == 2 + 2 + 4 + 4 + 2 + 2
    assert sum(k.startswith("i(") for k in values) == 2 + 2 + 2 + 2


QUIET_CHILD = """
import logging, sys
import numpy as np
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from xbar_circuit import Crossbar, solve
from PySpice.Spice.NgSpice.SimulationType import SIMULATION_TYPE

sol = solve(Crossbar.random(3, 3, r_row=1.0, r_col=1.0, seed=0), np.full(3, 0.2),
            backend="ngspice", mode="shared")
version = int(sol.info["ngspice_version"].split("-")[1])
level = logging.getLogger("PySpice.Spice.NgSpice.Shared.NgSpiceShared").level
print(sol.info["mode"], sol.info["matrix_solver"], version in SIMULATION_TYPE, level, sep="|")
"""


@pytest.mark.ngspice
@skip_without_shared
def test_shared_mode_is_quiet_and_reports_its_mode() -> None:
    """No "Unsupported Ngspice version" on stderr, and PySpice's logger left as it was."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", QUIET_CHILD], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    mode, solver, known, level = proc.stdout.strip().split("|")
    assert mode == "shared" and solver in ("KLU", "Sparse 1.3")
    # PySpice 1.5 knows vector tables up to ngspice 34, so it does warn for ours: the test
    # is not vacuous. Its logger's level is restored (NOTSET) after each call.
    assert known == "False" and level == "0"
    assert "Unsupported Ngspice version" not in proc.stderr, proc.stderr
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr


@pytest.mark.ngspice
@skip_without_ngspice
def test_xbar_info_and_solve_mode_option() -> None:
    from click.testing import CliRunner

    from xbar_circuit.cli import main
    from xbar_circuit.netlists import ngspice_capabilities

    caps = ngspice_capabilities()
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    assert f"ngspice subprocess mode: {caps.version}, matrix solver {caps.solver}" \
        in result.output
    modes = ["subprocess"] + (["shared"] if HAVE_SHARED else [])
    for mode in modes:
        result = CliRunner().invoke(main, ["solve", "--random", "4x4", "--compare",
                                           "reference,ngspice", "--mode", mode])
        assert result.exit_code == 0 and "AGREE" in result.output, result.output
    result = CliRunner().invoke(main, ["solve", "--random", "4x4", "--backend", "ngspice",
                                       "--mode", "bogus"])
    assert result.exit_code == 2 and "bogus" in result.output
    assert runner_module.capabilities("subprocess") is ngspice_capabilities()  # cached


@pytest.mark.ngspice
@skip_without_ngspice
def test_every_run_has_a_timeout() -> None:
    from xbar_circuit.backends.ngspice import DEFAULT_TIMEOUT_FLOOR

    sol = solve(Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0), [0.1, 0.2],
                backend="ngspice", mode="subprocess")
    assert sol.info["timeout"] == DEFAULT_TIMEOUT_FLOOR
    sol = solve(Crossbar.random(2, 2, r_row=1.0, r_col=1.0, seed=0), [0.1, 0.2],
                backend="ngspice", mode="subprocess", timeout=30)
    assert sol.info["timeout"] == 30.0
