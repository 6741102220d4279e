"""Benchmark of the ``"nodal"`` solver against its peers; writes ``docs/benchmarks.md``.

Run from the repository root (``make bench`` does)::

    .venv/bin/python benchmarks/run.py            # full run, ~10 minutes
    .venv/bin/python benchmarks/run.py --quick    # small sizes only, for a smoke test

Everything is timed in one run on the same machine:

1. single solves, 64x64 to 1024x1024: ``xbar_circuit.solve(..., backend="nodal")``
   against ``scipy.sparse.linalg.spsolve`` on the same 2MN x 2MN nodal matrix and,
   where it finishes within 2 minutes, ngspice (the ``"ngspice"`` backend);
2. a batch of 1024 input vectors on 256x256: ``"nodal"`` against 1024 spsolve calls
   (a documented number is timed and multiplied), one ``splu`` factorization reused
   for all 1024 right-hand sides, and the ideal product ``V @ G``;
3. peak memory (``VmHWM``) of 1024x1024 and 2048x2048 solves, each in a fresh
   subprocess;
4. CG iterations against size and line loss ``r·g``;
5. nonlinear cells (sinh RRAM, 1T1R): the Newton solver of ``"nodal"`` against the
   ``"reference"`` Newton (SciPy SuperLU per iteration) and ngspice on the same
   netlist (128x128 sinh: target >= 20x faster than ngspice). ``--quick`` skips the
   ngspice runs above 32x32.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse.linalg as spla

import xbar_circuit
from xbar_circuit import Crossbar, solve
from xbar_circuit.cython_solvers.assembly import nodal_matrix, nodal_rhs
from xbar_circuit.effective import effective_conductance

ROOT = Path(__file__).resolve().parent.parent

R_WIRE = 1.0        # ohm per segment, row and column
R_DRIVER = 10.0     # ohm
R_SENSE = 10.0      # ohm
G_MIN, G_MAX = 1e-6, 1e-4   # siemens, uniform random cells
V_MAX = 0.2         # volt, uniform random inputs in [0, V_MAX]
NGSPICE_LIMIT = 120.0       # seconds
NONLINEAR_NGSPICE_LIMIT = 1800.0   # seconds, one nonlinear 128x128 .op
SINH_K = 3.0        # 1/V, nonlinearity of the sinh benchmark cells
V_MAX_NONLINEAR = 0.3   # volt: inputs uniform in [0, 0.3] V, where sinh(k v)/k is 15 % above g v


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def median_time(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (seconds) and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def crossbar(n: int, seed: int = 0) -> Crossbar:
    return Crossbar.random(n, n, r_row=R_WIRE, r_col=R_WIRE, r_driver=R_DRIVER,
                           r_sense=R_SENSE, g_off=G_MIN, g_on=G_MAX, seed=seed)


def inputs(n: int, batch: int | None = None, seed: int = 1) -> np.ndarray:
    shape = (n,) if batch is None else (batch, n)
    return np.random.default_rng(seed).uniform(0.0, V_MAX, size=shape)


def spsolve_currents(xbar: Crossbar, matrix: Any, v: np.ndarray) -> np.ndarray:
    m, n = xbar.shape
    x = spla.spsolve(matrix, nodal_rhs(xbar, v[None, :])[0])
    cell = x[: m * n].reshape(m, n) - x[m * n :].reshape(m, n)
    return np.sum(xbar.conductance * cell, axis=0)


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


WARM_GIB = 6.0


def warm_memory(gib: float = WARM_GIB) -> str:
    """Touch ``gib`` GiB once in a subprocess and return a note for the report.

    On a virtual machine whose host backs guest memory lazily (this one), the first
    touch of a page costs about 10x a later one; without this step whichever method
    runs first would pay for it. Pages touched once stay backed after the
    subprocess exits.
    """
    code = f"import numpy as np; a = np.ones(int({gib!r} * 2**27)); print(a[-1])"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    return (f"- Memory warm-up: {gib:g} GiB touched once in a subprocess before timing "
            f"({time.perf_counter() - start:.1f} s), so that no method pays the VM's "
            "first-touch cost of fresh pages.")


def memory_bandwidth(mib: int = 128, repeats: int = 5) -> str:
    """Streaming bandwidth now, as a note for the report.

    ``a = b + c`` on three ``mib`` MiB arrays, split over two threads (NumPy releases
    the GIL), best of ``repeats``; three arrays' bytes per pass. The large solves are
    bound by this rate, which on a shared virtual machine varies with the host's load
    (24 to 40 GB/s seen on this machine kind, 17 GB/s under contention).
    """
    rows = mib * 2**20 // 8 // 1024
    a, b, c = (np.ones((rows, 1024)) for _ in range(3))
    halves = [(0, rows // 2), (rows // 2, rows)]
    best = math.inf
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            for future in [pool.submit(np.add, b[lo:hi], c[lo:hi], out=a[lo:hi])
                           for lo, hi in halves]:
                future.result()
            best = min(best, time.perf_counter() - start)
    rate = 3 * a.nbytes / best / 1e9
    return (f"- Memory bandwidth at the start: {rate:.0f} GB/s (`a = b + c` on three "
            f"{mib} MiB arrays over 2 threads, best of {repeats}); large solves are bound "
            "by it.")


def machine() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return [
        f"- Machine: {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, "
        f"{mem:.1f} GiB RAM, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}, SciPy "
        f"{scipy.__version__}, xbar-circuit {xbar_circuit.__version__}",
        f"- Load average at start: {load} (other processes may share the machine)",
    ]


# ------------------------------------------------------------------ ngspice
def ngspice_available() -> tuple[bool, str]:
    try:
        from xbar_circuit.backends import get_backend

        get_backend("ngspice")
    except Exception as exc:
        return False, f"the 'ngspice' backend is not importable ({type(exc).__name__}: {exc})"
    return True, ""


def time_ngspice(xbar: Crossbar, v: np.ndarray) -> tuple[float | None, str]:
    """One ngspice solve through the backend, or ``None`` and why."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = solve(xbar, v, backend="ngspice", timeout=NGSPICE_LIMIT)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    elapsed = time.perf_counter() - start
    ref = solve(xbar, v).column_currents
    err = float(np.max(np.abs(sol.column_currents - ref)) / np.max(np.abs(ref)))
    return elapsed, f"max rel. difference to nodal {err:.1e}"


# ----------------------------------------------------------- the sections
def single_solves(sizes: list[int], ngspice_sizes: list[int]) -> list[str]:
    ok, why = ngspice_available()
    lines = [
        "## Single solve",
        "",
        "One input vector. `nodal` = `xbar_circuit.solve(xbar, v)` (validation, chain "
        "factorization and CG included). `spsolve` = `scipy.sparse.linalg.spsolve` on "
        "the same 2MN x 2MN nodal matrix (CSC, assembly not timed; SuperLU with COLAMD). "
        "`ngspice` = `solve(xbar, v, backend=\"ngspice\")` (deck writing and reading "
        "included). Times are medians over the repeats shown; ratio = peer / nodal.",
        "",
        "| size | unknowns | repeats | nodal | CG iterations | spsolve | spsolve / nodal "
        "| max rel. diff. of I | ngspice | ngspice / nodal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for n in sizes:
        xbar, v = crossbar(n), inputs(n)
        repeats = 5 if n <= 128 else 3 if n <= 256 else 2 if n <= 512 else 1
        log(f"single {n}x{n}: nodal")
        solve(xbar, v)  # warm-up (imports, page faults)
        t_nodal, sol = median_time(lambda xbar=xbar, v=v: solve(xbar, v), max(repeats, 3))
        matrix = nodal_matrix(xbar).tocsc()
        log(f"single {n}x{n}: spsolve x{repeats}")
        t_sp, i_sp = median_time(
            lambda xbar=xbar, matrix=matrix, v=v: spsolve_currents(xbar, matrix, v), repeats
        )
        del matrix
        diff = np.max(np.abs(i_sp - sol.column_currents)) / np.max(np.abs(i_sp))
        t_ng: float | None = None
        ng_cell = "not run"
        if n in ngspice_sizes and ok:
            log(f"single {n}x{n}: ngspice (limit {NGSPICE_LIMIT:.0f} s)")
            t_ng, note = time_ngspice(xbar, v)
            ng_cell = fmt_s(t_ng) if t_ng is not None else "failed"
            notes.append(f"- ngspice {n}x{n}: {note}")
        elif n in ngspice_sizes:
            ng_cell = "skipped"
        elif n > max(ngspice_sizes, default=0):
            ng_cell = f"> {NGSPICE_LIMIT:.0f} s (not run)"
        lines.append(
            f"| {n}x{n} | {2 * n * n:,} | {repeats} | {fmt_s(t_nodal)} | "
            f"{sol.info.get('iterations', '–')} | {fmt_s(t_sp)} | {t_sp / t_nodal:.0f}x | "
            f"{diff:.1e} | {ng_cell} | "
            f"{'' if t_ng is None else f'{t_ng / t_nodal:.0f}x'} |"
        )
    lines.append("")
    if not ok:
        notes.append(f"- ngspice skipped: {why}.")
    notes.append(
        "- ngspice sizes above 128x128 are not run here (ngspice 46 with KLU took 43 s at "
        "256x256 and 334 s at 512x512); docs/benchmarks-spice.md (`benchmarks/spice.py`) "
        "compares ngspice Sparse, ngspice KLU and nodal up to 512x512."
    )
    return [*lines, *notes, ""]


def batch_section(n: int, batch: int, sp_calls: int) -> list[str]:
    xbar, v = crossbar(n), inputs(n, batch)
    rows = []
    log(f"batch {batch} on {n}x{n}: nodal (auto)")
    solve(xbar, v[:4])
    t_auto, sol = median_time(lambda: solve(xbar, v), 3)
    ref_i = sol.column_currents
    rows.append(("`solve(xbar, V)` (nodal, automatic path: "
                 f"{'G_eff / unit responses' if sol.info.get('effective') else 'per-vector CG'}"
                 "), full solution with node voltages", t_auto, 3))
    del sol
    log("batch: nodal per-vector CG")
    t_direct, sol = median_time(lambda: solve(xbar, v, use_effective=False), 1)
    err_direct = np.max(np.abs(sol.column_currents - ref_i)) / np.max(np.abs(ref_i))
    del sol
    rows.append(("`solve(xbar, V, use_effective=False)` (nodal, one CG solve per vector, "
                 "2 threads)", t_direct, 1))
    log("batch: effective conductance")
    t_geff, g_eff = median_time(lambda: effective_conductance(xbar), 3)
    t_prod, i_geff = median_time(lambda: v @ g_eff, 5)
    rows.append(("`effective_conductance(xbar)` then `V @ G_eff` (currents only)",
                 t_geff + t_prod, 3))
    rows.append(("`V @ G_eff` alone, G_eff already computed", t_prod, 5))
    log("batch: ideal product")
    t_ideal, _ = median_time(lambda: v @ xbar.conductance, 5)
    rows.append(("ideal product `V @ G` (no parasitics; the floor)", t_ideal, 5))
    log(f"batch: spsolve x{sp_calls}")
    matrix = nodal_matrix(xbar).tocsc()
    t_sp, _ = median_time(lambda matrix=matrix: spsolve_currents(xbar, matrix, v[0]), sp_calls)
    rows.append((f"{batch} calls of `spsolve` = {batch} × median of {sp_calls} timed calls",
                 t_sp * batch, sp_calls))
    log("batch: splu once + all right-hand sides")
    start = time.perf_counter()
    lu = spla.splu(matrix)
    t_factor = time.perf_counter() - start
    rhs = np.ascontiguousarray(nodal_rhs(xbar, v).T)
    start = time.perf_counter()
    x = lu.solve(rhs)
    t_tri = time.perf_counter() - start
    m2 = n * n
    cells = x[:m2].T.reshape(batch, n, n) - x[m2:].T.reshape(batch, n, n)
    i_lu = np.einsum("ij,bij->bj", xbar.conductance, cells)
    del x, rhs, cells, lu, matrix
    err_lu = np.max(np.abs(i_lu - ref_i)) / np.max(np.abs(ref_i))
    err_geff = np.max(np.abs(i_geff - i_lu)) / np.max(np.abs(i_lu))
    rows.append((f"one `splu` ({fmt_s(t_factor)}) reused for {batch} triangular solves "
                 f"({fmt_s(t_tri)})", t_factor + t_tri, 1))
    lines = [
        f"## Batch of {batch} input vectors on {n}x{n}",
        "",
        "Ratio = time of the row / time of `solve(xbar, V)` with the nodal backend "
        "(> 1: nodal is faster).",
        "",
        "| method | repeats | time | ratio to nodal |",
        "|---|---|---|---|",
    ]
    for label, seconds, reps in rows:
        lines.append(f"| {label} | {reps} | {fmt_s(seconds)} | {seconds / t_auto:.3g} |")
    lines += [
        "",
        f"- Agreement of column currents (max relative difference): nodal automatic vs "
        f"per-vector CG {err_direct:.1e}; nodal vs splu {err_lu:.1e}; `V @ G_eff` vs splu "
        f"{err_geff:.1e}.",
        f"- The {batch}-call spsolve figure is extrapolated: {sp_calls} calls were timed "
        f"(median {fmt_s(t_sp)} each) and multiplied by {batch}.",
        "",
    ]
    return lines


MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from xbar_circuit import Crossbar, solve
    n = {n}
    xbar = Crossbar.random(n, n, r_row={r!r}, r_col={r!r}, r_driver={rd!r},
                           r_sense={rs!r}, g_off={gmin!r}, g_on={gmax!r}, seed=0)
    v = np.random.default_rng(1).uniform(0.0, {vmax!r}, size=n)
    def hwm():
        # VmHWM: peak resident set of this process (kB); unlike ru_maxrss it is
        # not inherited from the parent across fork + exec.
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    base = hwm()
    t = time.perf_counter()
    sol = solve(xbar, v) if {do_solve} else None
    t = time.perf_counter() - t
    peak = hwm()
    it = sol.info.get("iterations") if sol is not None else 0
    print(base, peak, t, it)
    """
)


def memory_section(sizes: list[int]) -> list[str]:
    lines = [
        "## Peak memory",
        "",
        "Each row is a fresh Python subprocess that builds the crossbar and solves one "
        "input vector; the peak resident memory is the process's `VmHWM` from "
        "`/proc/self/status` (interpreter, NumPy and SciPy included; `ru_maxrss` is not "
        "used because Linux carries the parent's value across fork and exec). "
        "`before solve` is the peak after building the crossbar, so the difference is "
        "what the solve adds.",
        "",
        "| size | unknowns | peak before solve | peak after solve | solve time "
        "| CG iterations | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        log(f"memory {n}x{n}")
        script = MEMORY_SCRIPT.format(n=n, r=R_WIRE, rd=R_DRIVER, rs=R_SENSE,
                                      gmin=G_MIN, gmax=G_MAX, vmax=V_MAX, do_solve=True)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=900, check=False)
        target = "< 2 GB" if n == 1024 else "completes"
        if proc.returncode != 0:
            lines.append(f"| {n}x{n} | {2 * n * n:,} | – | failed: "
                         f"{proc.stderr.strip().splitlines()[-1][:80]} | – | – | {target} |")
            continue
        base, peak, seconds, iters = proc.stdout.split()
        lines.append(
            f"| {n}x{n} | {2 * n * n:,} | {int(base) / 1024:.0f} MiB | "
            f"{int(peak) / 1024:.0f} MiB | {float(seconds):.2f} s | {iters} | {target} |"
        )
    return [*lines, ""]


def convergence_section(sizes: list[int], losses: list[float]) -> list[str]:
    lines = [
        "## CG iterations against size and line loss",
        "",
        "Every cell ON at `g` (the worst case for a given `g`), `r_row = r_col = 1 ohm`, "
        "ideal driver and sense amplifier, inputs uniform in [0, 0.2] V, default "
        "`rtol = 1e-12`. `r·g·N²` measures how lossy a line is. Entry: CG iterations "
        "(time of one solve).",
        "",
        "| size | " + " | ".join(f"r·g = {x:g}" for x in losses) + " |",
        "|---|" + "---|" * len(losses),
    ]
    for n in sizes:
        cells = []
        for loss in losses:
            xbar = Crossbar(np.full((n, n), loss), r_row=1.0, r_col=1.0)
            v = inputs(n)
            try:
                start = time.perf_counter()
                sol = solve(xbar, v)
                elapsed = time.perf_counter() - start
                cells.append(f"{sol.info['iterations']} ({fmt_s(elapsed)}, r·g·N² = "
                             f"{loss * n * n:.3g})")
            except xbar_circuit.ConvergenceError as exc:
                cells.append(f"no convergence ({exc.iterations} it.)")
        lines.append(f"| {n}x{n} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def nonlinear_section(sizes: list[int], ngspice_sizes: list[int]) -> list[str]:
    """Newton on nonlinear cells: nodal vs reference vs ngspice (same netlist)."""
    from xbar_circuit.devices import AccessTransistor, OneT1R, Sinh

    ok, why = ngspice_available()
    lines = [
        "## Nonlinear cells (Newton-Raphson)",
        "",
        f"Cells `Sinh(k={SINH_K:g})` (i = g·sinh(k·v)/k) and 1T1R (`OneT1R(AccessTransistor"
        "(v_th=0.4, k_n=1e-3), Linear(), v_gate=1.2)`), same wires and periphery as above, "
        f"inputs uniform in [0, {V_MAX_NONLINEAR:g}] V. `nodal` = compiled Newton (each "
        "step by line-preconditioned CG); `reference` = SciPy Newton with one SuperLU "
        "factorization per iteration; `ngspice` = the same netlist (B-sources / level-1 "
        "MOSFETs, tight `.options`: see docs/models.md) through `backend=\"ngspice\"`. "
        "Times are medians; ratio = peer / nodal; errors are max relative column-current "
        "differences to nodal.",
        "",
        "| device | size | nodal | Newton its | CG its (total) | reference | ref / nodal "
        "| ngspice | ngspice / nodal | max rel. diff. ngspice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    devices = [("sinh", Sinh(SINH_K)),
               ("1t1r", OneT1R(AccessTransistor(0.4, 1e-3), v_gate=1.2))]
    for label, device in devices:
        for n in sizes:
            xbar = crossbar(n).replace(device=device)
            v = np.random.default_rng(1).uniform(0.0, V_MAX_NONLINEAR, n)
            log(f"nonlinear {label} {n}x{n}: nodal")
            solve(xbar, v)
            t_nodal, sol = median_time(lambda xbar=xbar, v=v: solve(xbar, v), 5)
            t_ref: float | None = None
            if n <= 256:
                log(f"nonlinear {label} {n}x{n}: reference")
                t_ref, _ = median_time(
                    lambda xbar=xbar, v=v: solve(xbar, v, backend="reference"), 3 if n < 256 else 1)
            ng_cell, ratio, diff = "not run", "", ""
            if label == "sinh" and n in ngspice_sizes and ok:
                log(f"nonlinear {label} {n}x{n}: ngspice (limit {NONLINEAR_NGSPICE_LIMIT:.0f} s)")
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        ng = solve(xbar, v, backend="ngspice", timeout=NONLINEAR_NGSPICE_LIMIT)
                    t_ng = time.perf_counter() - start
                    ng_cell = fmt_s(t_ng)
                    ratio = f"{t_ng / t_nodal:.0f}x"
                    err = np.abs(ng.column_currents - sol.column_currents).max() \
                        / np.abs(ng.column_currents).max()
                    diff = f"{err:.1e}"
                except Exception as exc:
                    ng_cell = f"failed ({type(exc).__name__})"
            elif label == "sinh" and n in ngspice_sizes:
                ng_cell = "skipped"
            lines.append(
                f"| {label} | {n}x{n} | {fmt_s(t_nodal)} | {sol.info['newton_iterations']} | "
                f"{sol.info['iterations']} | {fmt_s(t_ref)} | "
                f"{'' if t_ref is None else f'{t_ref / t_nodal:.0f}x'} | {ng_cell} | {ratio} "
                f"| {diff} |")
    lines.append("")
    if not ok:
        lines.append(f"- ngspice skipped: {why}.")
    lines.append("- ngspice runs only for the sinh arrays of the sizes marked (it refactors "
                 "the full matrix at every Newton iteration; larger arrays take far longer).")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes only (smoke test, writes to --output)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="Markdown file to write (default docs/benchmarks.md)")
    parser.add_argument("--only-nonlinear", action="store_true",
                        help="run only the nonlinear (Newton) section")
    args = parser.parse_args(argv)
    exe = Path(sys.executable)
    try:
        exe_text = str(exe.relative_to(Path.cwd()))
    except ValueError:
        exe_text = str(exe)
    command = " ".join([exe_text, "benchmarks/run.py", *(argv or sys.argv[1:])])
    started = time.perf_counter()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    doc = [
        "# Benchmarks of the nodal solver",
        "",
        f"Generated by `{command}` (from the repository root; `make bench`) on {now}. "
        "Do not edit by hand: rerun the command.",
        "",
        *machine(),
        warm_memory(1.0 if args.quick else WARM_GIB),
        memory_bandwidth(),
        f"- Arrays: uniform random cells in [{G_MIN:g}, {G_MAX:g}] S, r_row = r_col = "
        f"{R_WIRE:g} ohm, r_driver = {R_DRIVER:g} ohm, r_sense = {R_SENSE:g} ohm, inputs "
        f"uniform in [0, {V_MAX:g}] V (seeded).",
        "- nodal runs with its defaults: 2 worker threads over a batch, rtol = 1e-12. "
        "BLAS (used by the matrix products) runs with its default thread count.",
        "",
    ]
    if args.quick:
        sizes, ng_sizes, mem_sizes, conv_sizes = [64, 128], [64], [256], [64, 128]
        batch_n, batch, sp_calls = 64, 256, 3
        nl_sizes, nl_ng_sizes = [32, 64, 128], [32]
    else:
        sizes, ng_sizes, mem_sizes, conv_sizes = [64, 128, 256, 512, 1024], [64, 128], \
            [1024, 2048], [64, 256, 1024]
        batch_n, batch, sp_calls = 256, 1024, 5
        nl_sizes, nl_ng_sizes = [32, 64, 128, 256, 1024], [32, 64, 128]
    if args.only_nonlinear:
        sections = [lambda: nonlinear_section(nl_sizes, nl_ng_sizes)]
    else:
        sections = [
            lambda: single_solves(sizes, ng_sizes),
            lambda: batch_section(batch_n, batch, sp_calls),
            lambda: memory_section(mem_sizes),
            lambda: convergence_section(conv_sizes, [1e-6, 1e-4, 1e-3, 1e-2]),
            lambda: nonlinear_section(nl_sizes, nl_ng_sizes),
        ]
    for section in sections:
        try:
            doc += section()
        except Exception as exc:
            log(f"section failed: {exc!r}")
            doc += [f"Section failed: `{type(exc).__name__}: {exc}`", ""]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(doc) + "\n", encoding="utf-8")
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    doc += [f"Total benchmark time {time.perf_counter() - started:.0f} s; load average at "
            f"the end: {load}.", ""]
    args.output.write_text("\n".join(doc) + "\n", encoding="utf-8")
    sweeps = args.output.parent / "benchmarks-sweeps.md"
    if sweeps.exists():
        # Sweep throughput is measured by `make calibration`; carry its latest report.
        from xbar_circuit.validation.reports import demote_headings, splice_section

        splice_section(args.output, "sweeps", demote_headings(sweeps.read_text()))
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
