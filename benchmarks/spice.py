"""SPICE at real sizes: ngspice Sparse 1.3 vs ngspice KLU vs the nodal solver, and read_deck.

Writes the marked ``spice`` section of ``docs/benchmarks-spice.md``. Run from the
repository root (``make bench`` runs it after ``benchmarks/run.py``)::

    .venv/bin/python benchmarks/spice.py
    .venv/bin/python benchmarks/spice.py --ngspice39 /opt/ngspice39/usr/bin/ngspice

One linear crossbar deck per size (64, 128, 256, 512; random G in [1e-6, 1e-4] S,
``r_row = r_col = 1 ohm``, ``r_driver = r_sense = 5 ohm``, 0.2 V on every row):

1. ngspice with its Sparse 1.3 solver: Debian 12's ngspice 39 when one is given
   (``--ngspice39`` or ``$XBAR_NGSPICE39``; its codemodel folder through
   ``$SPICE_LIB_DIR`` when it is not installed system-wide), else the installed ngspice
   without ``.option klu`` (said so in the table). Runs longer than ``--sparse-timeout``
   are stopped and reported as such;
2. the installed ngspice with ``.options klu pivrel=0.5`` (KLU);
3. ``solve(..., backend="nodal")`` (compiled solver) on the same array;
4. ``read_deck`` + ``Netlist.operating_point()`` on our own 256x256 deck, against
   ngspice KLU on the same deck.

Each ngspice run is ``ngspice -b -r out.raw deck.cir`` in a fresh folder; wall time
includes reading the deck, and peak memory is ngspice's resident high-water mark
(``VmHWM``, sampled while it runs; a run shorter than the sampling interval shows 0).
Every result is checked against the ``"reference"`` backend (largest column-current
difference relative to the largest column current).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xbar_circuit import Crossbar, solve
from xbar_circuit.backends.ngspice import arrays_from_values
from xbar_circuit.netlists import (
    find_ngspice,
    ngspice_capabilities,
    ngspice_version,
    op_values,
    read_deck,
    read_rawfile,
    write_deck,
)
from xbar_circuit.validation.reports import splice_section

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks-spice.md"
SIZES = (64, 128, 256, 512)


def crossbar(size: int) -> Crossbar:
    """The benchmark array of ``size`` x ``size`` cells (seeded)."""
    return Crossbar.random(size, size, r_row=1.0, r_col=1.0, r_driver=5.0, r_sense=5.0,
                           g_off=1e-6, g_on=1e-4, seed=size)


def _peak_mb(pid: int, previous: float) -> float:
    """The process's resident high-water mark (VmHWM) in MB, or ``previous``."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return max(previous, int(line.split()[1]) / 1024.0)
    except OSError:
        pass
    return previous


def run_ngspice(executable: str, deck: str, timeout: float,
                env: dict[str, str] | None = None) -> dict:
    """Run one deck; return seconds, peak memory (MB), values, or why it stopped.

    Peak memory is ngspice's VmHWM, sampled every 20 ms while it runs (the rusage of
    the child would count the forked Python before ``exec``).
    """
    workdir = Path(tempfile.mkdtemp(prefix="xbar-bench-spice-"))
    proc = None
    try:
        (workdir / "deck.cir").write_text(deck)
        start = time.perf_counter()
        proc = subprocess.Popen([executable, "-b", "-r", "out.raw", "deck.cir"], cwd=workdir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "LC_ALL": "C", **(env or {})})
        peak = 0.0
        while proc.poll() is None:
            peak = _peak_mb(proc.pid, peak)
            if time.perf_counter() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"stopped": f"> {timeout:.0f} s (stopped)"}
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not (workdir / "out.raw").exists():
            return {"stopped": f"failed (exit {proc.returncode})"}
        values = op_values(read_rawfile(workdir / "out.raw")[-1])
        return {"seconds": seconds, "mb": peak, "values": values}
    finally:
        if proc is not None and proc.poll() is None:  # interrupted: ngspice goes too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def error_vs_reference(xbar: Crossbar, values: dict[str, float], ref: np.ndarray) -> float:
    """Largest column-current difference relative to the largest column current."""
    _, _, currents = arrays_from_values(xbar, values)
    return float(np.max(np.abs(currents - ref)) / np.max(np.abs(ref)))


def cell(result: dict, error: float | None = None) -> str:
    if "stopped" in result:
        return result["stopped"]
    memory = f"{result['mb']:.0f} MB" if result["mb"] > 0 else "<20 ms"
    text = f"{result['seconds']:.2f} s, {memory}"
    return text + (f", err {error:.0e}" if error is not None else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngspice39", default=os.environ.get("XBAR_NGSPICE39"),
                        help="an ngspice 39 executable (Sparse 1.3 only)")
    parser.add_argument("--sparse-timeout", type=float, default=400.0,
                        help="seconds before a Sparse 1.3 run is stopped")
    parser.add_argument("--klu-timeout", type=float, default=900.0)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    exe = find_ngspice()
    if exe is None:
        print("ngspice is not installed: nothing to compare", file=sys.stderr)
        return 1
    caps = ngspice_capabilities(exe)
    if not caps.klu:
        print(f"{caps.version} has no KLU: the KLU column will be empty "
              "(scripts/install_system_deps.sh installs ngspice with KLU)", file=sys.stderr)
    sparse_exe, sparse_env, sparse_label = exe, None, f"{caps.version} without .option klu"
    if args.ngspice39 and Path(args.ngspice39).exists():
        sparse_exe = args.ngspice39
        lib = Path(args.ngspice39).resolve().parent.parent / "share" / "ngspice"
        sparse_env = {"SPICE_LIB_DIR": str(lib)} if lib.is_dir() else None
        sparse_label = ngspice_version(sparse_exe)
    print(f"Sparse 1.3: {sparse_label} ({sparse_exe}); KLU: {caps.version} ({exe})", flush=True)

    rows = []
    stop_sparse = False
    for size in sizes:
        xbar = crossbar(size)
        v_in = np.full(size, 0.2)
        ref = solve(xbar, v_in, backend="reference").column_currents
        start = time.perf_counter()
        nodal = solve(xbar, v_in, backend="nodal")
        nodal_seconds = time.perf_counter() - start
        nodal_err = float(np.max(np.abs(nodal.column_currents - ref)) / np.max(np.abs(ref)))
        if stop_sparse:
            sparse = {"stopped": "not run (the smaller size was stopped)"}
        else:
            sparse = run_ngspice(sparse_exe, write_deck(xbar, v_in, klu=False),
                                 args.sparse_timeout, sparse_env)
            stop_sparse = "stopped" in sparse
        klu = run_ngspice(exe, write_deck(xbar, v_in, klu=True), args.klu_timeout) \
            if caps.klu else {"stopped": "no KLU"}
        row = {
            "size": size,
            "sparse": cell(sparse, error_vs_reference(xbar, sparse["values"], ref)
                           if "values" in sparse else None),
            "klu": cell(klu, error_vs_reference(xbar, klu["values"], ref)
                        if "values" in klu else None),
            "nodal": f"{nodal_seconds:.3f} s, err {nodal_err:.0e}",
            "speedup": (f"{klu['seconds'] / nodal_seconds:.0f}x"
                        if "seconds" in klu else "–"),
        }
        rows.append(row)
        print(row, flush=True)

    # read_deck + solve on our own 256x256 deck, against ngspice KLU on the same deck.
    deck_rows = []
    size = 256
    xbar = crossbar(size)
    v_in = np.full(size, 0.2)
    deck = write_deck(xbar, v_in, klu=caps.klu)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x256.cir"
        path.write_text(deck)
        start = time.perf_counter()
        netlist = read_deck(path)
        parsed = time.perf_counter() - start
        op = netlist.operating_point()
        total = time.perf_counter() - start
    ref = solve(xbar, v_in, backend="reference").column_currents
    ours = np.array([op.currents[f"vtia_{j}"] for j in range(size)])
    ours_err = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))
    spice = run_ngspice(exe, deck, args.klu_timeout)
    deck_rows.append((f"{total:.1f} s (parse {parsed:.1f} s, solve {total - parsed:.1f} s), "
                      f"err {ours_err:.0e}",
                      cell(spice, error_vs_reference(xbar, spice["values"], ref)
                           if "values" in spice else None)))
    print(deck_rows[-1], flush=True)

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    same = sparse_exe == exe
    text = [
        "## ngspice Sparse 1.3 vs ngspice KLU vs the nodal solver",
        "",
        f"Measured {now} on {platform.machine()}, {os.cpu_count()} cores "
        f"({platform.platform()}), load average {load[0]:.1f} at the end; command: "
        f"`{' '.join(['.venv/bin/python', 'benchmarks/spice.py', *(argv or sys.argv[1:])])}`.",
        "",
        f"- Sparse 1.3 column: **{sparse_label}**"
        + (" (only one ngspice is installed here: the same executable without "
           "`.option klu`)" if same else " (Debian 12's own build, which has no KLU)")
        + f"; runs above {args.sparse_timeout:.0f} s are stopped.",
        f"- KLU column: **{caps.version}** with `.options klu pivrel=0.5`.",
        "- nodal: `solve(xbar, v_in, backend=\"nodal\")`, the compiled solver.",
        "- Each cell: wall time, peak resident memory of the ngspice process, and the "
        "largest column-current difference from the `reference` backend relative to the "
        "largest column current. Linear crossbar, random G in [1e-6, 1e-4] S, 1-ohm wires, "
        "5-ohm driver and sense resistances, 0.2 V inputs.",
        "- Other jobs shared the 2 cores during the run; the load average above says how "
        "much. Times vary by about ±40 % between runs on this shared machine.",
        "",
        "| size | ngspice Sparse 1.3 | ngspice KLU | nodal | KLU / nodal |",
        "|---|---|---|---|---|",
        *[f"| {r['size']}x{r['size']} | {r['sparse']} | {r['klu']} | {r['nodal']} | "
          f"{r['speedup']} |" for r in rows],
        "",
        "### read_deck on our own 256x256 deck",
        "",
        "`read_deck(path).operating_point()` (pure Python parser, SciPy SuperLU with "
        "iterative refinement) against ngspice KLU on the same file:",
        "",
        "| read_deck + solve | ngspice KLU |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in deck_rows],
    ]
    splice_section(args.report, "spice", "\n".join(text))
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
