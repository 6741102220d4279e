"""Every topology on the ``"nodal"`` solver, against the default circuit in the same run.

Writes ``docs/benchmarks-topologies.md``. Run from the repository root (``make bench``
does)::

    .venv/bin/python benchmarks/topologies.py            # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/topologies.py --quick    # 64x64, smoke test

Sections:

1. every topology the spec allows at 256x256: one solve, a batch of 1024 inputs and the
   effective conductance, each as a ratio to the default circuit's time in this run,
   with CG iterations and the largest relative column-current error against the
   ``"reference"`` backend (SciPy direct solve with refinement);
2. nonlinear (sinh) cells: a single solve against the linear one, and a batch of 64 on
   one thread against two;
3. CG iterations and time against size for the default circuit up to 8192x8192, each
   size in a fresh subprocess with its peak memory (``VmHWM``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xbar_circuit import TIA, Crossbar, Sinh, effective_conductance, solve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from run import memory_bandwidth, warm_memory  # noqa: E402  (as in benchmarks.md)

WARM_GIB = 8.0   # the 8192x8192 solve peaks at about 5.5 GiB
FRESH_RUNS = 3   # fresh processes per size for the default path (median), up to 4096
BATCH_REPEATS = 5   # alternating 1- and 2-thread runs of the nonlinear batch (median)
BATCH_REPEATS_LINEAR = 3   # runs of each topology's batch and G_eff (median)
G_MIN, G_MAX = 1e-6, 1e-4
V_MAX = 0.2
R_WIRE = 1.0   # ohm per segment of the scaling table's circuit (its r_row = r_col)


def log(message: str) -> None:
    print(f"[topologies] {message}", file=sys.stderr, flush=True)


def median_time(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def fmt_s(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def topologies(n: int) -> list[tuple[str, Crossbar]]:
    """The benchmark circuit (1 ohm wires, 10 ohm driver and sense) and its variants."""
    base = dict(r_row=1.0, r_col=1.0, r_driver=10.0, r_sense=10.0, g_off=G_MIN, g_on=G_MAX,
                seed=0)
    segments = np.random.default_rng(2).uniform(0.5, 1.5, size=(n, n))
    one_zero = np.full((n, n), 1.0)
    one_zero[n // 2, n // 3] = 0.0
    make = Crossbar.random
    return [
        ("default circuit", make(n, n, **base)),
        ("drivers right", make(n, n, **base, driver_side="right")),
        ("drivers on both ends", make(n, n, **base, driver_side="both")),
        ("sense at the top", make(n, n, **base, sense_side="top")),
        ("finite-gain TIA (A = 1e4, R_f = 10 kohm)",
         make(n, n, **base, tia=TIA(gain=1e4, r_feedback=1e4))),
        ("sense load 100 ohm", make(n, n, **base, sense_load=100.0)),
        ("per-segment wires", make(n, n, **{**base, "r_row": segments, "r_col": segments})),
        ("per-segment, one 0-ohm segment",
         make(n, n, **{**base, "r_row": one_zero, "r_col": 1.0})),
        ("column wire only (r_row = 0)", make(n, n, **{**base, "r_row": 0.0})),
        ("row wire only (r_col = 0)", make(n, n, **{**base, "r_col": 0.0})),
        ("zero-ohm lines, driver and sense resistance",
         make(n, n, **{**base, "r_row": 0.0, "r_col": 0.0})),
    ]


def rel_error(ours: np.ndarray, ref: np.ndarray) -> float:
    scale = np.abs(ref).max(axis=-1, keepdims=True)
    significant = np.abs(ref) >= 1e-12 * scale
    return float(np.max(np.where(significant, np.abs(ours - ref) / np.abs(ref), 0.0)))


def topology_section(n: int, batch: int, repeats: int) -> list[str]:
    rng = np.random.default_rng(1)
    v1 = rng.uniform(0.0, V_MAX, n)
    vb = rng.uniform(0.0, V_MAX, (batch, n))
    rows = []
    cases = topologies(n)
    default = cases[0][1]
    tasks: dict[str, Callable[[Crossbar], Any]] = {
        "single": lambda x: solve(x, v1),
        "batch": lambda x: solve(x, vb),
        "geff": lambda x: effective_conductance(x),
    }
    counts = {"single": repeats, "batch": BATCH_REPEATS_LINEAR, "geff": BATCH_REPEATS_LINEAR}
    for name, xbar in cases:
        solve(xbar, v1)
        times: dict[str, float] = {}
        ratios: dict[str, float] = {}
        for task, run in tasks.items():
            log(f"{name}: {task}")
            # Each run of the row alternates with one of the default circuit, so that a
            # change in the shared machine's speed hits the ratio's two sides alike.
            ours, base = [], []
            for _ in range(counts[task]):
                ours.append(median_time(lambda xbar=xbar, run=run: run(xbar), 1)[0])
                if xbar is not default:
                    base.append(median_time(lambda run=run: run(default), 1)[0])
            times[task] = statistics.median(ours)
            ratios[task] = times[task] / statistics.median(base) if base else 1.0
        sol = solve(xbar, v1)
        log(f"{name}: reference")
        ref = solve(xbar, v1, backend="reference")
        err = rel_error(sol.column_currents, ref.column_currents)
        rows.append(
            f"| {name} | {fmt_s(times['single'])} | {ratios['single']:.2f}x | "
            f"{fmt_s(times['batch'])} | {ratios['batch']:.2f}x | {fmt_s(times['geff'])} | "
            f"{ratios['geff']:.2f}x | {sol.info['iterations']} | {err:.1e} |")
    return [
        f"## Every topology at {n}x{n}",
        "",
        f"Uniform random cells in [{G_MIN:g}, {G_MAX:g}] S, 1 ohm wire segments, 10 ohm "
        f"driver and sense resistance unless the row says otherwise; inputs uniform in "
        f"[0, {V_MAX:g}] V. *single*: one input vector (median of {repeats}); *batch*: "
        f"{batch} input vectors in one call (2 worker threads, large-batch path where "
        f"chosen; median of {BATCH_REPEATS_LINEAR}); *G_eff*: `effective_conductance` "
        f"(median of {BATCH_REPEATS_LINEAR}). Ratios are to the default circuit, timed "
        "alternately with each row's runs. *error*: largest relative column-current "
        "difference to the "
        "`\"reference\"` backend over columns carrying at least 1e-12 of the largest "
        "current (the accuracy contract is 1e-9).",
        "",
        "| circuit | single | / default | batch | / default | G_eff | / default | CG its "
        "| error vs reference |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def nonlinear_section(n: int, batch: int) -> list[str]:
    xbar = Crossbar.random(n, n, r_row=1.0, r_col=1.0, r_driver=10.0, r_sense=10.0,
                           g_off=G_MIN, g_on=G_MAX, seed=0)
    sinh = xbar.replace(device=Sinh(3.0))
    rng = np.random.default_rng(3)
    v1 = rng.uniform(0.0, 0.3, n)
    vb = rng.uniform(0.0, 0.3, (batch, n))
    log("nonlinear: single")
    solve(sinh, v1)
    t_lin, _ = median_time(lambda: solve(xbar, v1), 5)
    t_nl, sol = median_time(lambda: solve(sinh, v1), 5)
    log("nonlinear: batch on 1 and 2 threads")
    # Alternating runs, so that a change in the shared machine's speed hits both alike.
    times: dict[int, list[float]] = {1: [], 2: []}
    results = {}
    for _ in range(BATCH_REPEATS):
        for threads in (1, 2):
            seconds, results[threads] = median_time(
                lambda threads=threads: solve(sinh, vb, threads=threads), 1)
            times[threads].append(seconds)
    t_b1, t_b2 = statistics.median(times[1]), statistics.median(times[2])
    one, two = results[1], results[2]
    same = float(np.max(np.abs(one.column_currents - two.column_currents)
                        / np.abs(one.column_currents).max()))
    return [
        f"## Nonlinear cells at {n}x{n}",
        "",
        "`Sinh(k=3)` cells on the circuit above, inputs uniform in [0, 0.3] V.",
        "",
        "| measurement | time | ratio |",
        "|---|---|---|",
        f"| one linear solve | {fmt_s(t_lin)} | |",
        f"| one sinh solve ({sol.info['newton_iterations']} Newton iterations) | "
        f"{fmt_s(t_nl)} | {t_nl / t_lin:.2f}x the linear solve |",
        f"| batch of {batch} sinh inputs, 1 thread (median of {BATCH_REPEATS}) | "
        f"{fmt_s(t_b1)} | |",
        f"| batch of {batch} sinh inputs, 2 threads (median of {BATCH_REPEATS}, runs "
        f"alternating with 1 thread) | {fmt_s(t_b2)} | {t_b1 / t_b2:.2f}x faster than 1 "
        "thread |",
        "",
        f"The two batches agree to {same:.1e} (relative to the largest current).",
        "",
    ]


def _one_size(n: int, coarse: str) -> None:
    """Child process: solve the default circuit once at n x n and print JSON."""
    xbar = Crossbar.random(n, n, r_row=1.0, r_col=1.0, r_driver=10.0, r_sense=10.0,
                           g_off=G_MIN, g_on=G_MAX, seed=0)
    v = np.random.default_rng(1).uniform(0.0, V_MAX, n)
    solve(Crossbar.random(8, 8, r_row=1.0, r_col=1.0, seed=0), v[:8])  # imports, threads
    option: Any = {"auto": "auto", "off": False}[coarse]
    start = time.perf_counter()
    sol = solve(xbar, v, coarse=option)
    seconds = time.perf_counter() - start
    peak = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    print(json.dumps({"seconds": seconds, "iterations": sol.info["iterations"],
                      "refinement_steps": sol.info.get("refinement_steps", 0),
                      "peak_bytes": peak}))


def _run_size(n: int, coarse: str) -> dict[str, Any] | str:
    proc = subprocess.run([sys.executable, __file__, "--one-size", str(n), "--coarse", coarse],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return "failed: " + " ".join(proc.stderr.strip().splitlines()[-1:])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def scaling_section(sizes: list[int]) -> list[str]:
    rows = []
    iterations: dict[int, int] = {}
    warm = warm_memory(WARM_GIB if max(sizes) > 2048 else 1.0)
    bandwidth = memory_bandwidth()
    for n in sizes:
        log(f"scaling {n}x{n} (fresh processes: line preconditioner alone, then default)")
        line = _run_size(n, "off")
        runs = [_run_size(n, "auto") for _ in range(FRESH_RUNS if n <= 4096 else 1)]
        failed = [run for run in runs if isinstance(run, str)]
        default: dict[str, Any] | str = failed[0] if failed else sorted(
            runs, key=lambda run: run["seconds"])[len(runs) // 2]
        lengths = n / math.sqrt(1.0 / (R_WIRE * 0.5 * (G_MIN + G_MAX)))
        if isinstance(line, str) or isinstance(default, str):
            rows.append(f"| {n}x{n} | {lengths:.1f} | {line if isinstance(line, str) else ''} "
                        f"| | {default if isinstance(default, str) else ''} | | | |")
            continue
        iterations[n] = int(default["iterations"])
        rows.append(
            f"| {n}x{n} | {lengths:.1f} | {line['iterations']} | {fmt_s(line['seconds'])} | "
            f"{default['iterations']} (+{default['refinement_steps']}) | "
            f"{fmt_s(default['seconds'])} | {line['seconds'] / default['seconds']:.1f}x | "
            f"{default['peak_bytes'] / 2**30:.2f} GiB |")
    summary = []
    if sizes[0] in iterations and len(iterations) > 1:
        largest = max(iterations)
        summary = [f"Default-path CG iterations at {largest}x{largest}: "
                   f"{iterations[largest]}, {iterations[largest] / iterations[sizes[0]]:.1f}x "
                   f"those at {sizes[0]}x{sizes[0]} ({iterations[sizes[0]]}).", ""]
    return [
        "## CG iterations against size (default circuit)",
        "",
        "The circuit above at growing size, one input vector, each size and path in a fresh "
        "process (peak memory is the default path's `VmHWM`, interpreter and NumPy "
        f"included); the default path's time is the median of {FRESH_RUNS} fresh processes "
        "up to 4096x4096, one above. *Lines only*: CG on the line preconditioner "
        "(`coarse=False`). "
        "*Default*: the solver's own choice, which adds the coarse level on arrays of at "
        "least 512x512 cells spanning six decay lengths `λ = sqrt(1/(r_wire · mean G))` "
        "(docs/solver.md); its "
        "iterations are CG iterations (+ refinement steps).",
        "",
        "| size | N/λ | lines only: iterations | time | default: iterations | time | "
        "speed-up | peak memory |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *summary,
        warm,
        bandwidth,
        "",
    ]


def machine() -> list[str]:
    try:
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    return [f"- Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"NumPy {np.__version__}."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x64 only (smoke test)")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "docs" / "benchmarks-topologies.md")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--coarse", default="auto", choices=["auto", "off"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--scaling-only", action="store_true",
                        help="only the iterations-against-size table (writes --output)")
    args = parser.parse_args(argv)
    if args.one_size:
        _one_size(args.one_size, args.coarse)
        return 0
    started = time.perf_counter()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join(["benchmarks/topologies.py", *(argv or sys.argv[1:])])
    doc = ["# Every topology on the nodal solver", "",
           f"Generated by `python {command}` (`make bench`) on {now}. Do not edit by hand.",
           "", *machine(), ""]
    if args.scaling_only:
        doc += scaling_section([256, 512, 1024, 2048, 4096, 8192])
    elif args.quick:
        doc += topology_section(64, 128, 3) + nonlinear_section(64, 8) \
            + scaling_section([256, 512])
    else:
        doc += topology_section(256, 1024, 5) + nonlinear_section(256, 64) \
            + scaling_section([256, 512, 1024, 2048, 4096, 8192])
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    doc += [f"Total time {time.perf_counter() - started:.0f} s; load average at the end: "
            f"{load}.", ""]
    args.output.write_text("\n".join(doc) + "\n", encoding="utf-8")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
