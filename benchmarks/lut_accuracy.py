"""Measure the prediction error of a calibration table against exact solves.

Builds (or reuses) the table of a sweep file with the same code as ``xbar calibrate``,
draws held-out random configurations (new seeds, off-grid sizes and parameter values,
inside the table's range), solves each exactly and compares the table's predictions.
Writes docs/calibration.md and docs/figures/calibration_*.png, with measured figures only.

Default (the documented command, arrays up to 256x256)::

    python benchmarks/lut_accuracy.py

Development scale (arrays up to 64x64)::

    python benchmarks/lut_accuracy.py --sweep validation/sweeps/accuracy-small.yaml \
        --table build/lut-accuracy-small.nc
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def draw_config(rng: np.random.Generator, table: object) -> dict:
    """One held-out configuration inside the table's range, off its grid."""
    axes = table._axes
    out: dict = {}
    for key in ("rows", "cols"):
        lo, hi = int(axes[key][0]), int(axes[key][-1])
        grid = {int(v) for v in axes[key]}
        while True:
            value = round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
            if lo <= value <= hi and (value not in grid or lo == hi):
                break
        out[key] = value
    for key in ("r_row", "r_col", "r_driver", "r_sense"):
        lo, hi = float(axes[key][0]), float(axes[key][-1])
        if lo == hi:
            out[key] = lo
        elif lo > 0:
            out[key] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        else:
            out[key] = float(rng.uniform(lo, hi))
    # g_on off the table's value (the table reaches it by exact circuit scaling); the
    # g_off/g_on ratio inside the table's range.
    g_lo, g_hi = float(axes["g_on"][0]), float(axes["g_on"][-1])
    out["g_on"] = float(np.exp(rng.uniform(np.log(g_lo / 2), np.log(g_hi * 2))))
    ratios = axes["g_off"] / axes["g_on"][0]
    out["g_off"] = out["g_on"] * float(np.exp(rng.uniform(np.log(ratios[0]), np.log(ratios[-1]))))
    # r scale so that r*g_on stays inside the table's range
    scale = float(axes["g_on"][0]) / out["g_on"] if g_lo == g_hi else 1.0
    for key in ("r_row", "r_col", "r_driver", "r_sense"):
        out[key] *= scale
    out["density"] = float(rng.uniform(axes["density"][0], axes["density"][-1]))
    return out


def measure(table: object, n_heldout: int, seed: int, map_every: int) -> list[dict]:
    """Solve held-out configurations exactly and record predictions."""
    from xbar_circuit import Crossbar, solve
    from xbar_circuit.tables.physics import first_order_loss, nf_from_loss, point_inputs

    rows = []
    for k in range(n_heldout):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        cfg = draw_config(rng, table)
        m, n = cfg["rows"], cfg["cols"]
        on = rng.random((m, n)) < cfg["density"]
        g = np.where(on, cfg["g_on"], cfg["g_off"])
        v = point_inputs(table.sweep.inputs, m, rng)
        xbar = Crossbar(g, r_row=cfg["r_row"], r_col=cfg["r_col"], r_driver=cfg["r_driver"],
                        r_sense=cfg["r_sense"])
        t0 = time.perf_counter()
        sol = solve(xbar, v, backend=table.sweep.backend)
        t_solve = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = table.predict_nf(xbar, v, method="scalar", out_of_range="ignore")
        t_pred = time.perf_counter() - t0
        row = dict(cfg, k=k, nf=sol.nf, pred_scalar=pred,
                   pred_map=table.predict_nf(xbar, v, method="map", out_of_range="ignore"),
                   pred_model=table.predict_nf(xbar, v, method="model"),
                   pred_first_order=nf_from_loss(g, v, first_order_loss(
                       g, v, xbar.r_row, xbar.r_col, xbar.r_driver, xbar.r_sense))[0],
                   t_solve=t_solve, t_pred=t_pred)
        # the same array driven by random inputs (the table was made with its sweep's
        # input pattern): how well the predictor follows inputs it was not calibrated on
        v_rand = rng.uniform(0.0, float(table.sweep.inputs["v_read"]), size=m)
        row["nf_rand_inputs"] = solve(xbar, v_rand, backend=table.sweep.backend).nf
        row["pred_rand_inputs"] = table.predict_nf(xbar, v_rand, out_of_range="ignore")
        if map_every and k % map_every == 0:
            exact = sol.cell_loss
            pmap = table.predict_attenuation(xbar, v, out_of_range="ignore")
            ok = np.isfinite(exact)
            row["map_mae"] = float(np.mean(np.abs(pmap[ok] - exact[ok])))
            row["map_max"] = float(np.max(np.abs(pmap[ok] - exact[ok])))
        rows.append(row)
        if (k + 1) % 25 == 0:
            print(f"  held-out {k + 1}/{n_heldout}", file=sys.stderr, flush=True)
    return rows


def stats(err: np.ndarray) -> tuple[float, float, float]:
    err = np.abs(err)
    return float(err.mean()), float(np.percentile(err, 95)), float(err.max())


def make_figures(rows: list[dict], table: object, figdir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figdir.mkdir(parents=True, exist_ok=True)
    nf = np.array([r["nf"] for r in rows])
    names = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, key, label in ((axes[0], "pred_scalar", "lookup table (default, 'scalar')"),
                           (axes[1], "pred_model", "closed form alone (no table)")):
        pred = np.array([r[key] for r in rows])
        size = np.array([max(r["rows"], r["cols"]) for r in rows])
        sc = ax.scatter(nf, pred, c=np.log2(size), s=12, cmap="viridis")
        lim = [0, max(nf.max(), pred.max()) * 1.05]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.set_xlabel("exact NF (nodal solve)")
        ax.set_ylabel("predicted NF")
        ax.set_title(label)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        fig.colorbar(sc, ax=ax, label="log2 max(M, N)")
    fig.suptitle(f"Parity on {len(rows)} held-out configurations")
    fig.tight_layout()
    path = figdir / "calibration_parity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    names.append(path.name)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    err = np.array([r["pred_scalar"] - r["nf"] for r in rows])
    ax.scatter(nf, err, s=10)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("exact NF")
    ax.set_ylabel("predicted - exact NF")
    ax.set_title("Lookup-table error versus NF")
    fig.tight_layout()
    path = figdir / "calibration_error.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    names.append(path.name)
    return names


def report(rows: list[dict], table: object, args: argparse.Namespace, calib: dict,
           figures: list[str], command: str) -> str:
    nf = np.array([r["nf"] for r in rows])
    lines = [
        "# Lookup-table calibration: measured prediction error",
        "",
        "Generated by `benchmarks/lut_accuracy.py`; every figure below is measured by that run.",
        "",
        f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- Machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}",
        f"- xbar-circuit {table.attrs.get('package_version')}, solver backend "
        f"`{table.sweep.backend}` ({table.attrs.get('solver_tolerance')})",
        f"- Command: `{command}`",
        f"- Sweep: `{args.sweep}` ({table.sweep.n_points} grid points x "
        f"{table.sweep.samples} random arrays); table `{args.table}`",
        f"- Calibration: {calib['text']}",
        f"- ngspice cross-check recorded in the table: `{table.attrs.get('ngspice_check')}`",
        "",
        "## Table grid",
        "",
        "| axis | values |",
        "| --- | --- |",
    ]
    for k, v in table._axes.items():
        lines.append(f"| {k} | {', '.join(f'{x:g}' for x in v)} |")
    lines += [
        "",
        f"Input pattern: `{table.sweep.inputs['pattern']}` at {table.sweep.inputs['v_read']} V. "
        "NF is the mean column NF of docs/convention.md §2.",
        "",
        "## Held-out configurations",
        "",
        f"{len(rows)} configurations, each with its own seed (root seed {args.heldout_seed}, "
        "never used by the table): M and N drawn log-uniformly in the table's size range "
        "and never equal to a grid size; r_row and r_col log-uniform, r_driver and r_sense "
        "uniform inside the grid's range; g_on log-uniform from half the table's lowest "
        "to twice its highest value (reached by the exact circuit scaling), g_off/g_on "
        "inside the grid's ratio range; ON density uniform in the grid's range; the "
        "sweep's input pattern. Each is a random binary ON/OFF array solved exactly.",
        f"Exact NF of the held-out set: {nf.min():.4f} to {nf.max():.4f} "
        f"(median {np.median(nf):.4f}).",
        "",
        "## Absolute NF error",
        "",
        "| predictor | mean abs error | 95th percentile | max |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (("pred_scalar", "**lookup table, `predict_nf` default (`scalar`)**"),
                       ("pred_map", "lookup table, `method='map'` (per-cell maps)"),
                       ("pred_model", "closed-form cell-wise Padé model alone (no table)"),
                       ("pred_first_order", "first-order model alone (linear in r)")):
        mean, p95, mx = stats(np.array([r[key] - r["nf"] for r in rows]))
        lines.append(f"| {label} | {mean:.2e} | {p95:.2e} | {mx:.2e} |")
    mean, p95, mx = stats(np.array([r["pred_rand_inputs"] - r["nf_rand_inputs"] for r in rows]))
    lines += ["", "Inputs outside the table's pattern: the same arrays driven by random inputs "
              f"uniform in [0, {table.sweep.inputs['v_read']}] V (passed as `v_in`): mean abs "
              f"error {mean:.2e}, 95th percentile {p95:.2e}, max {mx:.2e}."]
    lines += ["", "### By array size (max(M, N)) — lookup table default", "",
              "| max(M, N) | n | mean abs error | 95th percentile | max |",
              "| --- | --- | --- | --- | --- |"]
    size = np.array([max(r["rows"], r["cols"]) for r in rows])
    edges = [int(x) for x in table._axes["cols"]]
    edges = sorted(set(edges + [int(x) for x in table._axes["rows"]]))
    for lo, hi in itertools.pairwise(edges):
        sel = (size > lo) & (size <= hi) if lo != edges[0] else (size >= lo) & (size <= hi)
        if sel.any():
            mean, p95, mx = stats(np.array([rows[i]["pred_scalar"] - rows[i]["nf"]
                                            for i in np.flatnonzero(sel)]))
            lines.append(f"| {lo}–{hi} | {int(sel.sum())} | {mean:.2e} | {p95:.2e} | {mx:.2e} |")
    lines += ["", "### By exact NF — lookup table default", "",
              "| exact NF | n | mean abs error | 95th percentile | max | mean relative error |",
              "| --- | --- | --- | --- | --- | --- |"]
    for lo, hi in ((0, 0.05), (0.05, 0.15), (0.15, 0.3), (0.3, 1.0)):
        sel = (nf >= lo) & (nf < hi)
        if sel.any():
            e = np.array([rows[i]["pred_scalar"] - rows[i]["nf"] for i in np.flatnonzero(sel)])
            rel = float(np.mean(np.abs(e) / nf[sel]))
            mean, p95, mx = stats(e)
            lines.append(f"| {lo}–{hi} | {int(sel.sum())} | {mean:.2e} | {p95:.2e} | {mx:.2e} "
                         f"| {rel:.2%} |")
    maps = [r for r in rows if "map_mae" in r]
    if maps:
        lines += ["", "## Per-cell attenuation map", "",
                  f"`predict_attenuation` against the exact `cell_loss` on {len(maps)} of the "
                  "held-out configurations: mean over configurations of the per-cell mean "
                  f"absolute error {np.mean([r['map_mae'] for r in maps]):.2e}, largest single "
                  f"cell error {np.max([r['map_max'] for r in maps]):.2e}."]
    t_solve = np.array([r["t_solve"] for r in rows])
    t_pred = np.array([r["t_pred"] for r in rows])
    worst = sorted(rows, key=lambda r: -abs(r["pred_scalar"] - r["nf"]))[:5]
    lines += ["", "## Cost", "",
              f"Exact solve: median {np.median(t_solve) * 1e3:.1f} ms per configuration; "
              f"`predict_nf`: median {np.median(t_pred) * 1e3:.2f} ms.",
              "", "## Where the table is weaker", "",
              "The five largest errors of the default predictor:", "",
              "| M x N | g_on | r_row | r_col | r_driver | r_sense | density | exact NF "
              "| predicted |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in worst:
        lines.append(f"| {r['rows']}x{r['cols']} | {r['g_on']:.3g} | {r['r_row']:.3g} | "
                     f"{r['r_col']:.3g} | {r['r_driver']:.3g} | {r['r_sense']:.3g} | "
                     f"{r['density']:.2f} | {r['nf']:.4f} | {r['pred_scalar']:.4f} |")
    lines += ["", "(resistances in ohm, g_on in siemens.)", ""]
    lines += ["## Figures", ""] + [f"![{f}](figures/{f})" for f in figures] + [""]
    return "\n".join(lines)


def throughput(sweep_path: str, report_path: str, command: str) -> None:
    """Time the same sweep serially, on 1 and on 2 local Dask workers; write a report."""
    import shutil
    import tempfile

    from xbar_circuit.tables import Sweep, calibrate

    sweep = Sweep.from_file(sweep_path)
    work = tempfile.mkdtemp(prefix="xbar-throughput-")
    results = []
    try:
        for label, workers in (("serial (no Dask)", 0), ("1 Dask worker", 1),
                               ("2 Dask workers", 2)):
            out = os.path.join(work, f"t{workers}.nc")
            t0 = time.perf_counter()
            res = calibrate(sweep, out, workers=workers, progress=False, ngspice_check=False)
            total = time.perf_counter() - t0
            results.append((label, res, total, os.getloadavg()[0]))
            print(f"{label}: {res.points_per_second:.1f} points/s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = ", ".join(str(x) for x in sweep.grid["rows"])
    lines = [
        "# Calibration sweep throughput", "",
        "Generated by `benchmarks/lut_accuracy.py --throughput`; measured figures only.", "",
        f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- Machine: {platform.node()}, {os.cpu_count()} cores (shared with other work), "
        f"{platform.platform()}, Python {platform.python_version()}",
        f"- Command: `{command}`",
        f"- Sweep: `{sweep_path}`: {sweep.n_points} grid points (M, N in {{{sizes}}}, "
        f"{sweep.samples} random arrays per point, backend `{sweep.backend}`)", "",
        "| run | points | compute time (s) | points/s | wall time incl. cluster start "
        "and table assembly (s) | 1-min load average after the run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, res, total, load in results:
        lines.append(f"| {label} | {res.computed} | {res.seconds:.1f} | "
                     f"{res.points_per_second:.1f} | {total:.1f} | {load:.1f} |")
    base = results[1][1].points_per_second
    lines += ["", f"Speed-up of 2 workers over 1: {results[2][1].points_per_second / base:.2f}x. "
              "Each worker is one single-threaded process; the client writes one checkpoint "
              "per point. Points/s depends on the sizes in the sweep: the cost of a point "
              "grows with M·N. A load average above 2 means other processes shared the "
              "2 cores during the run, which lowers every figure.", ""]
    Path(report_path).write_text("\n".join(lines), encoding="utf-8")
    benchmarks = Path(report_path).parent / "benchmarks.md"
    if benchmarks.exists():  # keep docs/benchmarks.md's sweep section current
        from xbar_circuit.validation.reports import demote_headings, splice_section

        splice_section(benchmarks, "sweeps", demote_headings("\n".join(lines)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", default=str(ROOT / "validation/sweeps/accuracy.yaml"))
    parser.add_argument("--table", default=str(ROOT / "build/lut-accuracy.nc"))
    parser.add_argument("--sizes", default=None,
                        help="override the sweep's rows and cols, e.g. 16,32,64")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse-table", action="store_true",
                        help="use an existing --table instead of computing it")
    parser.add_argument("--heldout", type=int, default=400)
    parser.add_argument("--heldout-seed", type=int, default=987654321)
    parser.add_argument("--map-every", type=int, default=4,
                        help="compare the per-cell map on every k-th configuration")
    parser.add_argument("--report", default=str(ROOT / "docs/calibration.md"))
    parser.add_argument("--figures", default=str(ROOT / "docs/figures"))
    parser.add_argument("--json", default=None, help="also dump raw rows to this JSON file")
    parser.add_argument("--throughput", action="store_true",
                        help="only time --throughput-sweep on 0/1/2 workers and write "
                             "--throughput-report")
    parser.add_argument("--throughput-sweep",
                        default=str(ROOT / "validation/sweeps/throughput.yaml"))
    parser.add_argument("--throughput-report",
                        default=str(ROOT / "docs/benchmarks-sweeps.md"))
    args = parser.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/lut_accuracy.py",
                                                           *(argv or sys.argv[1:])])
    if args.throughput:
        throughput(args.throughput_sweep, args.throughput_report, command)
        return 0

    from xbar_circuit.tables import LookupTable, Sweep, calibrate

    sweep = Sweep.from_file(args.sweep)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
        data = sweep.to_dict()
        data["grid"]["rows"] = sizes
        data["grid"]["cols"] = sizes
        sweep = Sweep.from_dict(data)
    Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    if args.reuse_table and os.path.exists(args.table):
        calib = {"text": f"reused existing table `{args.table}` (timing not measured here)"}
    else:
        t0 = time.perf_counter()
        result = calibrate(sweep, args.table, workers=args.workers, progress=True)
        total = time.perf_counter() - t0
        calib = {"text": f"{result.computed} points computed on {result.workers} local Dask "
                 f"workers in {result.seconds:.1f} s ({result.points_per_second:.1f} points/s; "
                 f"{total:.1f} s including start-up, assembly and the ngspice check)"}
    table = LookupTable.load(args.table)
    print(f"table: {table!r}", file=sys.stderr)
    rows = measure(table, args.heldout, args.heldout_seed, args.map_every)
    figures = make_figures(rows, table, Path(args.figures))
    text = report(rows, table, args, calib, figures, command)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(text, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    for key in ("pred_scalar", "pred_map", "pred_model", "pred_first_order"):
        mean, p95, mx = stats(np.array([r[key] - r["nf"] for r in rows]))
        print(f"{key:18s} mean {mean:.2e}  p95 {p95:.2e}  max {mx:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
