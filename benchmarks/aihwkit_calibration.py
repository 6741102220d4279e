"""aihwkit's IR-drop model before and after calibration against the exact circuit.

For each array size (64, 128, 256 rows and columns) this script

1. fits aihwkit's ``forward.ir_drop`` on random tiles (uniform weights in [-1, 1], uniform
   inputs in [0, 1]: the "random inputs" of the report that aihwkit under-predicts the
   loss) with :func:`xbar_circuit.aihwkit_calibration.fit_aihwkit_ir_drop`;
2. splits every layer of the MDM study's networks (``benchmarks/mdm_study.py``: the
   same builders, weights and activations) into aihwkit's tiles (``max_input_size`` =
   ``max_output_size`` = the size, aihwkit's even split, each tile's largest |weight|
   at g_max, signed weights on a differential pair), and compares aihwkit's output error
   against the exact one (``xbar_circuit.effective_conductance`` per tile), before
   (aihwkit's physical parameters, ``ir_drop = 1``) and after the calibration;
3. writes the table into docs/aihwkit.md (between the study markers; the prose of that
   page is kept) and the calibrations into docs/aihwkit_ir_drop.json
   (``load_inference_rpu_config`` reads it).

Run: ``python benchmarks/aihwkit_calibration.py`` (about 10 minutes on 2 cores). The
networks need the ``[study]`` extra and the data packages of ``make mdm-study``;
networks whose packages are missing are skipped and named in the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from xbar_circuit.aihwkit_calibration import (  # noqa: E402
    AIHWKIT_SOURCE,
    AihwkitCalibration,
    export_aihwkit_config,
    fit_aihwkit_ir_drop,
    physical_g_ratio,
)
from xbar_circuit.errors import InputError  # noqa: E402
from xbar_circuit.presets import get_preset  # noqa: E402

BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"


def split_sizes(size: int, max_size: int) -> list[int]:
    """aihwkit's split of ``size`` into tiles of at most ``max_size`` (TileModuleArray)."""
    n = (size + max_size - 1) // max_size
    base, extra = divmod(size, n)
    return [base + (i < extra) for i in range(n)]


def layer_tiles(w: np.ndarray, x: np.ndarray, size: int, max_tiles: int
                ) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """aihwkit tiles of layer ``w`` (K, O) with inputs ``x`` (B, K): up to ``max_tiles``
    of them, evenly spread over the tiles that see some input; returns weights, inputs
    and the number of tiles."""
    rows, cols = split_sizes(w.shape[0], size), split_sizes(w.shape[1], size)
    r0, c0 = np.cumsum([0, *rows]), np.cumsum([0, *cols])
    grid = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    # tiles that see some input (a border-pixel tile of MNIST may see none)
    live = [(i, j) for i, j in grid
            if np.any(x[:, r0[i]:r0[i + 1]]) and np.any(w[r0[i]:r0[i + 1], c0[j]:c0[j + 1]])]
    pick = np.unique(np.linspace(0, len(live) - 1, min(max_tiles, len(live))).round()
                     .astype(int)) if live else []
    ws, xs = [], []
    for k in pick:
        i, j = live[k]
        wt = w[r0[i]:r0[i + 1], c0[j]:c0[j + 1]]
        ws.append(wt / np.max(np.abs(wt)))
        xs.append(x[:, r0[i]:r0[i + 1]])
    return ws, xs, len(grid)


def load_networks(names: list[str], seed: int, vectors: int, log: Any
                  ) -> tuple[list[tuple[str, str, np.ndarray, np.ndarray, str]], dict[str, str]]:
    """(network, layer, W, inputs, input kind) for every layer of the study's networks."""
    import mdm_study as study

    args = argparse.Namespace(seed=seed, n_cal=300, minilm_blocks=1,
                              minilm_layers="attention.self.query,attention.output.dense",
                              resnet_epochs=8)
    builders = {"digits": study.digits_net, "mnist": study.mnist_net, "onet": study.onet_net,
                "minilm": study.minilm_net, "resnet": study.resnet_net}
    layers, skipped = [], {}
    rng = np.random.default_rng(seed)
    for key in names:
        if key not in builders:
            raise SystemExit(f"unknown network {key!r}; known: {', '.join(builders)}")
        try:
            net = builders[key](args)
        except ImportError as exc:
            skipped[key] = f"missing package: {exc.name}"
            log(f"skipped {key}: {exc}")
            continue
        acts = (study.capture_activations(net, vectors, seed)
                if net.forward is not None else None)
        for layer in net.layers:
            if acts is not None and layer["name"] in acts:
                x, kind = acts[layer["name"]], "activations"
            else:
                x, kind = rng.uniform(0, 1, (vectors, layer["w"].shape[0])), "uniform [0, 1]"
            layers.append((net.name, layer["name"], layer["w"], x[:vectors], kind))
        log(f"loaded {net.name}: {len(net.layers)} layers")
    return layers, skipped


def fit_random(size: int, circuit: dict[str, float], n_tiles: int, vectors: int,
               seed: int) -> AihwkitCalibration:
    rng = np.random.default_rng([seed, size])
    ws = [rng.uniform(-1, 1, (size, size)) for _ in range(n_tiles)]
    xs = [rng.uniform(0, 1, (vectors, size)) for _ in range(n_tiles)]
    return fit_aihwkit_ir_drop(ws, xs, **circuit, tile_rows=size, tile_cols=size)


def _pct(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.1f} %"


def write_report(path: Path, fits: dict[int, AihwkitCalibration],
                 rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    preset = meta["preset"]
    lines = [
        BEGIN,
        "",
        "Generated by `benchmarks/aihwkit_calibration.py`; every number in this section is "
        "measured by that run. Do not edit it by hand: re-run the command.",
        "",
        f"- date: {meta['date']}",
        f"- machine: {meta['machine']}",
        f"- command: `{meta['command']}`",
        f"- wall time: {meta['seconds']:.0f} s",
        f"- model: NumPy re-implementation of {AIHWKIT_SOURCE}",
        f"- exact: xbar_circuit.effective_conductance per tile (G⁺ and G⁻ arrays), "
        f"preset `{preset.name}`: wire {preset.r_row} ohm per cell segment (rows and "
        f"columns), g_max = {preset.g_on:g} S, g_off = {preset.g_off:g} S, ideal driver "
        f"and sense; aihwkit's input 0 on the row next to the sense amplifiers",
        f"- before: aihwkit's physical parameters, `ir_drop = 1`, `ir_drop_g_ratio = "
        f"1/(r g_max) = {physical_g_ratio(preset.r_col, preset.g_on):.6g}` (aihwkit's "
        f"default ratio)",
        f"- after: `ir_drop` fitted per size on {meta['fit_tiles']} random tiles "
        f"(uniform weights in [-1, 1], {meta['fit_vectors']} uniform inputs in [0, 1] "
        f"each), objective `error`; not fitted on the layers below",
        f"- layers: up to {meta['max_tiles']} aihwkit tiles per layer (evenly spread "
        f"over the tiles that see some input), up to {meta['vectors']} input vectors per "
        f"layer (the even ones fit the layer's own `ir_drop`, the odd ones test every "
        f"column)",
    ]
    if meta["skipped"]:
        lines.append("- skipped networks: " + ", ".join(f"{k} ({v})" for k, v in
                                                        meta["skipped"].items()))
    lines += [
        "",
        "### The fits",
        "",
        "| size | ir_drop | ir_drop_g_ratio | exact error | aihwkit before | aihwkit after "
        "| mismatch before | mismatch after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, cal in fits.items():
        lines.append(f"| {size}x{size} | {cal.ir_drop:.4f} | {cal.ir_drop_g_ratio:.6g} | "
                     f"{cal.error_exact:.3e} | {cal.error_before:.3e} | {cal.error_after:.3e} "
                     f"| {cal.mismatch_before:.3f} | {cal.mismatch_after:.3f} |")
    lines += [
        "",
        "### The study layers",
        "",
        "Output error `‖y − y_ideal‖ / ‖y_ideal‖` of the exact circuit and of aihwkit on the "
        "held-out half of each layer's input vectors, and aihwkit's deviation from the exact "
        "value (`aihwkit / exact − 1`). **before**: physical parameters; **random fit**: "
        "`ir_drop` of the size's random-tile fit above; **layer fit**: `ir_drop` fitted on the "
        "other half of the same layer's vectors (the per-layer calibration, `ir_drop` in its "
        "column); mismatch `‖y_aihwkit − y_exact‖ / ‖y_exact − y_ideal‖`.",
        "",
        "| network | layer | K x O | size | tiles | inputs | exact error | before | "
        "random fit | layer fit | ir_drop (layer) | mismatch before | mismatch layer fit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ex = r["error_exact"]
        layer = (f"{r['error_layer']:.3e} ({_pct(r['error_layer'], ex)})"
                 if "error_layer" in r else "n/a")
        lines.append(
            f"| {r['network']} | {r['layer']} | {r['K']}x{r['O']} | {r['size']} | "
            f"{r['used']}/{r['tiles']} | {r['inputs']} | {ex:.3e} | "
            f"{r['error_before']:.3e} ({_pct(r['error_before'], ex)}) | "
            f"{r['error_after']:.3e} ({_pct(r['error_after'], ex)}) | {layer} | "
            f"{r.get('ir_drop_layer', float('nan')):.3f} | {r['mismatch_before']:.3f} | "
            f"{r.get('mismatch_layer', float('nan')):.3f} |")
    lines += ["", "Summary per size: median and range over the layers of `aihwkit / exact − 1`, "
              "and how many layers are within 10 % of the exact error:", ""]

    def summary(sel: list[dict[str, Any]], key: str) -> str:
        dev = np.array([r[key] / r["error_exact"] - 1 for r in sel if key in r]) * 100
        if len(dev) == 0:
            return "n/a"
        ok = int(np.sum(np.abs(dev) <= 10))
        return (f"{np.median(dev):+.1f} % ({dev.min():+.1f} to {dev.max():+.1f} %), "
                f"{ok}/{len(dev)} within 10 %")

    for size in fits:
        sel = [r for r in rows if r["size"] == size]
        if sel:
            lines.append(f"- {size}x{size}: before {summary(sel, 'error_before')}; random fit "
                         f"{summary(sel, 'error_after')}; layer fit "
                         f"{summary(sel, 'error_layer')}.")
    lines += ["", END]
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else f"# aihwkit\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--networks", default="digits,mnist,onet,minilm,resnet")
    parser.add_argument("--preset", default="aihwkit_ir_drop",
                        help="circuit preset (xbar_circuit.presets)")
    parser.add_argument("--max-tiles", type=int, default=2, help="aihwkit tiles per layer")
    parser.add_argument("--vectors", type=int, default=256,
                        help="input vectors per layer (half fit, half test)")
    parser.add_argument("--fit-tiles", type=int, default=2, help="random tiles per fit")
    parser.add_argument("--fit-vectors", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "docs" / "aihwkit.md"))
    parser.add_argument("--export", default=str(ROOT / "docs" / "aihwkit_ir_drop.json"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {msg}", flush=True)

    preset = get_preset(args.preset)
    circuit = {"r_row": preset.r_row, "r_col": preset.r_col, "g_max": preset.g_on,
               "g_off": preset.g_off, "r_driver": preset.r_driver, "r_sense": preset.r_sense}
    fits = {}
    for size in sizes:
        fits[size] = dataclasses.replace(
            fit_random(size, circuit, args.fit_tiles, args.fit_vectors, args.seed),
            label=f"random {size}x{size}")
        cal = fits[size]
        log(f"fit {size}: ir_drop {cal.ir_drop:.4f}, exact {cal.error_exact:.3e}, before "
            f"{cal.error_before:.3e}, mismatch {cal.mismatch_before:.3f} -> "
            f"{cal.mismatch_after:.3f}")
    layers, skipped = load_networks([n.strip() for n in args.networks.split(",")],
                                    args.seed, args.vectors, log)
    rows = []
    layer_fits: list[AihwkitCalibration] = []
    for size in sizes:
        for network, name, w, x, kind in layers:
            ws, xs, n_tiles = layer_tiles(w, x, size, args.max_tiles)
            if not ws:
                continue
            fit_x, test_x = [xt[0::2] for xt in xs], [xt[1::2] for xt in xs]
            res = fits[size].evaluate(ws, test_x)
            row = {"network": network, "layer": name, "K": w.shape[0], "O": w.shape[1],
                   "size": size, "tiles": n_tiles, "used": len(ws), "inputs": kind, **res}
            try:
                own = fit_aihwkit_ir_drop(ws, fit_x, **circuit, tile_rows=size,
                                          tile_cols=size, label=f"{network} / {name}")
            except InputError as exc:
                log(f"{size} {network} {name}: no layer fit ({exc})")
            else:
                layer_fits.append(own)
                held = own.evaluate(ws, test_x)
                row.update({"ir_drop_layer": own.ir_drop, "error_layer": held["error_after"],
                            "mismatch_layer": held["mismatch_after"]})
            rows.append(row)
            log(f"{size} {network} {name}: exact {res['error_exact']:.3e} before "
                f"{res['error_before']:.3e} random fit {res['error_after']:.3e} layer fit "
                f"{row.get('error_layer', float('nan')):.3e}")
    export_aihwkit_config([*fits.values(), *layer_fits], args.export)
    log(f"wrote {args.export}")
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, NumPy {np.__version__}",
        "command": " ".join(["python", "benchmarks/aihwkit_calibration.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "seconds": time.perf_counter() - start, "preset": preset, "skipped": skipped,
        "max_tiles": args.max_tiles, "vectors": args.vectors, "fit_tiles": args.fit_tiles,
        "fit_vectors": args.fit_vectors}
    write_report(Path(args.output), fits, rows, meta)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
