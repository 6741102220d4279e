"""No user string becomes a deck line, no ngspice outlives its caller, no NaN is accepted.

* Every line separator :meth:`str.splitlines` knows, and every other control
  character, is refused in titles by :func:`write_deck`, :func:`to_pyspice_circuit`
  and :func:`run_deck` (subprocess and shared mode), and the shell command such a
  title would smuggle into a ``.control`` block never runs.
* A Python process interrupted by SIGINT or SIGTERM during a long ngspice run leaves
  no ngspice process and no temporary folder behind.
* NaN or infinite values in ngspice's output raise :class:`NgspiceOutputError`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from xbar_circuit import Crossbar
from xbar_circuit.errors import InputError, NgspiceError, XbarError
from xbar_circuit.netlists import (
    DeckTextError,
    NgspiceOutputError,
    check_deck,
    check_deck_text,
    find_libngspice,
    run_deck,
    to_pyspice_circuit,
    write_deck,
)
from xbar_circuit.netlists import discovery as discovery_module
from xbar_circuit.netlists import shared_library as shared_module
from xbar_circuit.netlists import subprocess_run as subprocess_module

HAVE_NGSPICE = shutil.which("ngspice") is not None
try:
    import PySpice  # noqa: F401

    HAVE_SHARED = find_libngspice() is not None
except ImportError:  # pragma: no cover
    HAVE_SHARED = False

skip_without_ngspice = pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice not installed")
skip_without_shared = pytest.mark.skipif(not HAVE_SHARED, reason="libngspice/PySpice missing")
MODES = [
    pytest.param("subprocess", marks=skip_without_ngspice),
    pytest.param("shared", marks=skip_without_shared),
]

# Every separator of str.splitlines(), then other control characters.
SEPARATORS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
CONTROLS = ["\t", "\x00", "\x07", "\x1b", "\x7f", "\x9b"]
XBAR = Crossbar(np.array([[1e-4, 2e-5], [5e-6, 1e-5]]), r_row=1.0, r_col=1.0)


def _hostile_title(target: Path, separator: str = "\u2028") -> str:
    return separator.join(["t", ".control", f"shell touch {target}", ".endc"])


def test_the_separator_list_is_what_splitlines_knows() -> None:
    """The test's own list: each splits a line in Python, none is missing below U+2030."""
    known = [chr(c) for c in range(0x2030) if len(f"a{chr(c)}b".splitlines()) > 1]
    assert sorted(known) == sorted(SEPARATORS)


@pytest.mark.parametrize("char", SEPARATORS + CONTROLS)
def test_checker_refuses_separators_and_controls(char: str) -> None:
    with pytest.raises(DeckTextError, match=f"U\\+{ord(char):04X}") as info:
        check_deck_text(f"ab{char}cd", "the title")
    assert info.value.position == 2 and isinstance(info.value, InputError)
    assert isinstance(info.value, XbarError)


def test_checker_accepts_printable_unicode() -> None:
    text = "array µ=1 Ω 4×4 ‘quoted’ é"
    assert check_deck_text(text) == text
    deck = "title\r\nR1 a 0 1k\n.op\n.end\n"  # CRLF pairs are one separator
    assert check_deck(deck) == deck


@pytest.mark.parametrize("char", SEPARATORS + CONTROLS)
def test_write_deck_refuses_every_separator_in_the_title(char: str, tmp_path: Path) -> None:
    with pytest.raises(DeckTextError):
        write_deck(XBAR, [0.1, 0.2], title=_hostile_title(tmp_path / "x", char))


def test_to_pyspice_circuit_refuses_a_newline_title(tmp_path: Path) -> None:
    pytest.importorskip("PySpice")
    for char in SEPARATORS:
        with pytest.raises(DeckTextError):
            to_pyspice_circuit(XBAR, [0.1, 0.2], title=_hostile_title(tmp_path / "x", char))
    circuit = to_pyspice_circuit(XBAR, [0.1, 0.2], title="fine")
    assert str(circuit).splitlines()[0].endswith("fine")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\v", "\r"])
def test_run_deck_refuses_a_hostile_title_and_runs_nothing(mode: str, separator: str,
                                                           tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    good = write_deck(XBAR, [0.1, 0.2])
    deck = _hostile_title(target, separator) + "\n" + good.split("\n", 1)[1]
    with pytest.raises(DeckTextError, match="line 1"):
        run_deck(deck, mode=mode)
    assert not target.exists()
    # The same title through write_deck never gets as far as a deck.
    with pytest.raises(DeckTextError):
        write_deck(XBAR, [0.1, 0.2], title=_hostile_title(target, separator))
    assert not target.exists()


@pytest.mark.parametrize("mode", MODES)
def test_plain_newline_title_through_pyspice_runs_nothing(mode: str, tmp_path: Path) -> None:
    pytest.importorskip("PySpice")
    target = tmp_path / "pwned"
    with pytest.raises(DeckTextError):
        circuit = to_pyspice_circuit(XBAR, [0.1, 0.2], title=_hostile_title(target, "\n"))
        run_deck(str(circuit) + ".op\n.end\n", mode=mode)
    assert not target.exists()


@skip_without_shared
def test_the_guard_is_what_stops_the_shared_mode_attack(tmp_path: Path) -> None:
    """Without the check, the U+2028 title does run a shell command in shared mode.

    This is the test's sensitivity check: it calls the library one level below
    ``run_deck`` (which checks the deck) to show the attack is real.
    """
    target = tmp_path / "pwned"
    good = write_deck(XBAR, [0.1, 0.2])
    deck = _hostile_title(target) + "\n" + good.split("\n", 1)[1]
    try:
        shared_module._Shared.get().run(deck, timeout=30, keep_files=False)
    except NgspiceError:
        pass
    assert target.exists()


# ------------------------------------------------------------------ interruption
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from xbar_circuit import Crossbar
    from xbar_circuit.netlists import run_deck, write_deck

    # Sparse 1.3 on a 160x160 array: minutes of ngspice time.
    xbar = Crossbar.random(160, 160, r_row=1.0, r_col=1.0, r_driver=1.0, seed=0)
    deck = write_deck(xbar, np.full(160, 0.2), klu=False)
    print("starting", flush=True)
    run_deck(deck, mode="subprocess")
    print("finished", flush=True)
""")


def _ngspice_pids_under(directory: Path) -> list[int]:
    """Pids of processes whose working directory lies under ``directory`` (Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if cwd.startswith(str(directory) + os.sep):
                found.append(int(entry))
    return found


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@skip_without_ngspice
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_long_run_leaves_no_ngspice_and_no_folder(sig: int,
                                                                  tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, TMPDIR=str(tmpdir))
    child = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert _wait_for(lambda: bool(_ngspice_pids_under(tmpdir)), 60), \
            "ngspice never started"
        pids = _ngspice_pids_under(tmpdir)
        assert pids and pids[0] != child.pid
        os.kill(child.pid, sig)  # the child only: ngspice is in its own session
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    out = child.stdout.read().decode() + child.stderr.read().decode()
    assert "finished" not in out
    assert _wait_for(lambda: not _ngspice_pids_under(tmpdir), 5), _ngspice_pids_under(tmpdir)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert list(tmpdir.iterdir()) == [], out
    expected = {signal.SIGINT: "KeyboardInterrupt", signal.SIGTERM: ""}[sig]
    assert expected in out
    if sig == signal.SIGTERM:
        assert child.returncode == 128 + signal.SIGTERM


def test_atexit_cleanup_kills_what_is_left(tmp_path: Path) -> None:
    """The atexit hook ends any recorded run and removes its folder."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        subprocess_module._LIVE_RUNS[sleeper.pid] = (str(workdir), False)
        subprocess_module._end_live_runs()
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
        assert not workdir.exists()
        assert sleeper.pid not in subprocess_module._LIVE_RUNS
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


# ------------------------------------------------------------------ NaN and inf
def _fake_ngspice(tmp_path: Path, value: str) -> str:
    """An executable that writes a one-point binary rawfile holding ``value``."""
    script = tmp_path / "fake-ngspice"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import struct, sys
        raw = sys.argv[sys.argv.index("-r") + 1]
        header = ("Title: fake\\nDate: now\\nPlotname: Operating Point\\nFlags: real\\n"
                  "No. Variables: 2\\nNo. Points: 1\\nVariables:\\n"
                  "\\t0\\tv(a)\\tvoltage\\n\\t1\\ti(v1)\\tcurrent\\nBinary:\\n")
        with open(raw, "wb") as handle:
            handle.write(header.encode() + struct.pack("<2d", 1.0, float("{value}")))
        print("fake ngspice done")
        """))
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_rawfile_values_are_refused(value: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_ngspice(tmp_path, value)
    monkeypatch.setattr(discovery_module, "find_ngspice", lambda: fake)
    with pytest.raises(NgspiceOutputError, match=r"non-finite value.*i\(v1\)") as info:
        run_deck("t\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n", mode="subprocess")
    assert isinstance(info.value, NgspiceError)
    kept = info.value.deck_path
    assert kept is not None and Path(kept).exists() and kept in str(info.value)
    shutil.rmtree(Path(kept).parent, ignore_errors=True)
    # The same fake with a finite value is accepted: the check is on the values.
    monkeypatch.setattr(discovery_module, "find_ngspice", lambda: _fake_ngspice(tmp_path, "2.5"))
    assert run_deck("t\nV1 a 0 1\n.op\n.end\n", mode="subprocess").values["i(v1)"] == 2.5


@skip_without_shared
def test_non_finite_shared_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = shared_module._Shared.get()
    monkeypatch.setattr(shared, "_read_current_plot",
                        lambda: {"v(a)": 1.0, "i(v1)": float("nan")})
    with pytest.raises(NgspiceOutputError, match="non-finite") as info:
        run_deck("t\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n", mode="shared", keep_files=False)
    assert info.value.deck_path is None
