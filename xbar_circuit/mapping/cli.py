"""``xbar map``: a weight file and a mapping config in, an NF report and plots out.

Register with ``main.add_command(map_command, name="map")``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..errors import XbarError
from .circuit import CircuitParams, layer_nf, load_lut
from .io import load_array, load_weights
from .layout import PRESETS, MappingConfig, map_layer
from .quantize import MappingError
from .search import search_layer

__all__ = ["map_command", "run_map"]


def _parse_tile(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"tile must look like 64x64, got {text!r}") from None
    return rows, cols


def run_map(weights: dict[str, np.ndarray], config: MappingConfig, circuit: CircuitParams,
            layouts: list[str], *, lut_path: str | None = None, search_evals: int = 0,
            search_tiles: int | None = None, inputs: np.ndarray | None = None,
            seed: int = 0) -> dict[str, Any]:
    """Map every matrix with every layout and return the NF report (a JSON-ready dict).

    Parameters
    ----------
    weights : dict of str to ndarray (K, O)
    config : MappingConfig
        Base config; each layout name from :data:`~xbar_circuit.mapping.PRESETS`
        sets its column and row order.
    circuit : CircuitParams
    layouts : list of str
    lut_path : str, optional
        Lookup table file for the estimated NF column.
    search_evals : int
        When > 0, also run the circuit-in-the-loop search from the MDM layout with
        this many exact evaluations per tile (reported as layout ``"search"``).
    search_tiles : int, optional
        Search only the first this-many tiles with the highest MDM NF.
    inputs : ndarray (B, K), optional
        Layer inputs for the NF under real inputs (same K for every matrix).

    Raises
    ------
    MappingError
        For negative ``search_evals``/``search_tiles`` or inputs whose width is not the
        K of every matrix.
    """
    if isinstance(search_evals, bool) or not isinstance(search_evals, (int, np.integer)) \
            or search_evals < 0:
        raise MappingError(f"search_evals must be an integer >= 0, got {search_evals!r}")
    if search_tiles is not None and (isinstance(search_tiles, bool) or not isinstance(
            search_tiles, (int, np.integer)) or search_tiles < 0):
        raise MappingError(f"search_tiles must be an integer >= 0, got {search_tiles!r}")
    if inputs is not None:
        inputs = np.asarray(inputs)
        if inputs.ndim not in (1, 2):
            raise MappingError(f"inputs must have shape (K,) or (B, K), got {inputs.shape}")
        for name, w in weights.items():
            if inputs.shape[-1] != w.shape[0]:
                raise MappingError(f"inputs have {inputs.shape[-1]} features per vector but "
                                   f"matrix {name!r} has K={w.shape[0]} rows (shape "
                                   f"{tuple(w.shape)}); the inputs must be (B, {w.shape[0]})")
    lut = load_lut(lut_path)
    report: dict[str, Any] = {
        "metric": "nf: mean over real columns of (I_ideal - I)/I_ideal; all-on = every "
                  "real row at v_read",
        "config": config.to_dict(), "circuit": circuit.to_dict(),
        "lut": {"path": lut_path, "available": lut is not None}, "layers": {}}
    for name, w in weights.items():
        x = inputs
        entry: dict[str, Any] = {"shape": list(w.shape)}
        mdm_layer = None
        for layout in layouts:
            start = time.perf_counter()
            layer = map_layer(w, MappingConfig.preset(layout, **{
                k: v for k, v in config.to_dict().items()
                if k not in ("column_order", "row_order")}))
            nf = layer_nf(layer, circuit, x, lut=lut)
            entry[layout] = {**nf.to_dict(), **layer.summary(),
                             "seconds": time.perf_counter() - start}
            if layout == "mdm":
                mdm_layer = layer
        if search_evals > 0:
            if mdm_layer is None:
                mdm_layer = map_layer(w, MappingConfig.preset("mdm", **{
                    k: v for k, v in config.to_dict().items()
                    if k not in ("column_order", "row_order")}))
            start = time.perf_counter()
            order = np.argsort([-t["nf_allon"] for t in layer_nf(mdm_layer, circuit).tiles])
            chosen = order[:search_tiles] if search_tiles else order
            searched, results = search_layer(mdm_layer, circuit, tiles=[int(i) for i in chosen],
                                             max_evals=search_evals, seed=seed)
            nf = layer_nf(searched, circuit, x, lut=lut)
            entry["search"] = {**nf.to_dict(), "searched_tiles": [int(i) for i in chosen],
                               "tile_nf_start": [r.nf_start for r in results],
                               "tile_nf_best": [r.nf_best for r in results],
                               "seconds": time.perf_counter() - start}
        report["layers"][name] = entry
    return report


def _plot(report: dict[str, Any], out_dir: Path) -> list[str]:
    from .._optional import import_optional

    matplotlib = import_optional("matplotlib", "xbar map --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, entry in report["layers"].items():
        layouts = [k for k, v in entry.items() if isinstance(v, dict) and "tiles" in v]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for layout in layouts:
            values = [t["nf_allon"] for t in entry[layout]["tiles"]]
            ax.plot(np.arange(len(values)), values, "o-", ms=3, label=layout)
        ax.set_xlabel("tile index")
        ax.set_ylabel("NF (mean column, all-on)")
        ax.set_title(f"{name} {entry['shape'][0]}x{entry['shape'][1]}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        path = out_dir / f"map_nf_{safe}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


@click.command(name="map")
@click.argument("weights", type=click.Path(exists=True, dir_okay=False))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON: {'mapping': {MappingConfig fields}, 'circuit': {r_row, r_col, "
                   "r_driver, r_sense}, 'layouts': [...]}; options below override it.")
@click.option("--tensor", default=None, help="Only this tensor of a safetensors/npz file.")
@click.option("--transpose", is_flag=True,
              help="Weights are stored (O, K) as in PyTorch Linear; transpose to (K, O).")
@click.option("--layouts", default=None,
              help=f"Comma-separated layouts from: {', '.join(PRESETS)} [naive,mdm,reverse].")
@click.option("--tile", default=None, help="Array size ROWSxCOLS [64x64].")
@click.option("--bits", type=int, default=None, help="Signed weight bits [8].")
@click.option("--bits-per-cell", type=int, default=None, help="Bits per device, 1-4 [1].")
@click.option("--sign", type=click.Choice(["differential", "offset"]), default=None)
@click.option("--g-on", type=float, default=None, help="ON conductance (S) [1e-4].")
@click.option("--g-off", type=float, default=None, help="OFF conductance (S) [1e-6].")
@click.option("--r-row", type=float, default=None, help="Row segment resistance (ohm) [1].")
@click.option("--r-col", type=float, default=None, help="Column segment resistance (ohm) [1].")
@click.option("--r-driver", type=float, default=None, help="Driver resistance (ohm) [0].")
@click.option("--r-sense", type=float, default=None, help="Sense resistance (ohm) [0].")
@click.option("--inputs", "inputs_path", type=click.Path(exists=True, dir_okay=False),
              help=".npy of layer inputs (B, K): also report the NF under these inputs.")
@click.option("--lut", "lut_path", default=None, help="Lookup table for estimated NF.")
@click.option("--search-evals", type=click.IntRange(min=0), default=0, show_default=True,
              help="Exact evaluations per tile of the row-order search from MDM (0 = off).")
@click.option("--search-tiles", type=click.IntRange(min=0), default=None,
              help="Search only the N tiles with the highest MDM NF.")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), default="xbar-map-out",
              show_default=True, help="Where report.json and the plots go.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def map_command(weights: str, config_path: str | None, tensor: str | None, transpose: bool,
                layouts: str | None, tile: str | None, bits: int | None,
                bits_per_cell: int | None, sign: str | None, g_on: float | None,
                g_off: float | None, r_row: float | None, r_col: float | None,
                r_driver: float | None, r_sense: float | None, inputs_path: str | None,
                lut_path: str | None, search_evals: int, search_tiles: int | None,
                out_dir: str, no_plots: bool, as_json: bool) -> None:
    """Map the weight matrices of WEIGHTS (.npy, .npz or .safetensors) onto crossbars
    and report the NF of each layout (naive, MDM, reverse, search) per tile and layer."""
    try:
        cfg_data: dict[str, Any] = {}
        if config_path:
            cfg_data = json.loads(Path(config_path).read_text())
            if not isinstance(cfg_data, dict):
                raise click.BadParameter("the config must be a JSON object")
        mapping = dict(cfg_data.get("mapping", {}))
        overrides = {"weight_bits": bits, "bits_per_cell": bits_per_cell, "sign": sign,
                     "g_on": g_on, "g_off": g_off}
        mapping.update({k: v for k, v in overrides.items() if v is not None})
        if tile:
            mapping["tile_rows"], mapping["tile_cols"] = _parse_tile(tile)
        config = MappingConfig.from_dict(mapping)
        circ = {"r_row": 1.0, "r_col": 1.0, "r_driver": 0.0, "r_sense": 0.0,
                **cfg_data.get("circuit", {})}
        circ.update({k: v for k, v in {"r_row": r_row, "r_col": r_col, "r_driver": r_driver,
                                       "r_sense": r_sense}.items() if v is not None})
        circuit = CircuitParams(**circ)
        names = (layouts.split(",") if layouts else
                 cfg_data.get("layouts", ["naive", "mdm", "reverse"]))
        names = [n.strip() for n in names]
        for n in names:
            if n not in PRESETS:
                raise click.BadParameter(f"unknown layout {n!r}; known: {', '.join(PRESETS)}")
        matrices = load_weights(weights, tensor, transpose=transpose)
        inputs = load_array(inputs_path, "inputs") if inputs_path else None
        report = run_map(matrices, config, circuit, names, lut_path=lut_path,
                         search_evals=search_evals, search_tiles=search_tiles, inputs=inputs)
    except (XbarError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report["weights_file"] = str(weights)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    plots = [] if no_plots else _plot(report, out)
    if as_json:
        click.echo(json.dumps(report, indent=1, default=float))
        return
    click.echo(f"circuit: r_row={circuit.r_row:g} ohm, r_col={circuit.r_col:g} ohm, "
               f"r_driver={circuit.r_driver:g} ohm, r_sense={circuit.r_sense:g} ohm; "
               f"g_on={config.level_array[-1]:g} S, g_off={config.level_array[0]:g} S; "
               f"tile {config.tile_rows}x{config.tile_cols}, {config.weight_bits}-bit weights, "
               f"{config.bits_per_cell} bit(s)/cell")
    click.echo("metric: NF = mean column (I_ideal - I)/I_ideal over real columns, every real "
               "row at v_read (all-on)")
    shown = [*names, *(["search"] if search_evals > 0 else [])]
    click.echo("| layer | shape | tiles | " + " | ".join(f"NF {n}" for n in shown)
               + (" | MDM vs naive |" if {"naive", "mdm"} <= set(shown) else " |")
               + (" NF LUT (mdm) |" if report["lut"]["available"] else ""))
    for name, entry in report["layers"].items():
        cells = [f"{entry[n]['layer_nf_allon']:.4e}" for n in shown]
        line = f"| {name} | {entry['shape'][0]}x{entry['shape'][1]} | " \
               f"{len(entry[shown[0]]['tiles'])} | " + " | ".join(cells)
        if {"naive", "mdm"} <= set(shown):
            red = 1 - entry["mdm"]["layer_nf_allon"] / entry["naive"]["layer_nf_allon"]
            line += f" | {100 * red:.1f} %"
        line += " |"
        if report["lut"]["available"] and "mdm" in entry:
            line += f" {entry['mdm']['layer_nf_lut']:.4e} |"
        click.echo(line)
    if lut_path and not report["lut"]["available"]:
        click.echo("LUT: unavailable (xbar_circuit.tables.LookupTable not importable)")
    click.echo(f"wrote {out / 'report.json'}" + (f" and {len(plots)} plot(s)" if plots else ""))
