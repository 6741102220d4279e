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

from .._cli_common import (
    common_options,
    emit_json,
    format_si,
    log,
    progress_bar,
    refuse_short_o,
    state,
)
from .._validate import check_int, check_real, load_json
from ..errors import XbarError
from .circuit import METRICS, CircuitParams, as_circuit, calibrate_layer, layer_nf, load_lut
from .compensation import compensate_layer, compensation_summary
from .io import load_array, load_weights
from .layout import PRESETS, MappedLayer, MappingConfig, map_layer
from .quantize import MappingError
from .readout import Periphery
from .search import MOVES, OBJECTIVES, search_layer

__all__ = ["map_command", "run_map"]


def _parse_tile(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"tile must look like 64x64, got {text!r}") from None
    return rows, cols


def run_map(weights: dict[str, np.ndarray], config: MappingConfig, circuit: Any,
            layouts: list[str], *, lut_path: str | None = None, search_evals: int = 0,
            search_tiles: int | None = None, inputs: np.ndarray | None = None,
            seed: int = 0, objective: str | None = None, moves: tuple[str, ...] = MOVES,
            periphery: Periphery | None = None, workers: int | None = 0,
            scheduler: str | None = None, progress: bool = False,
            compensate: bool = False, g_max: float | None = None) -> dict[str, Any]:
    """Map every matrix with every layout and return the metrics report (a JSON-ready dict).

    Parameters
    ----------
    weights : dict of str to ndarray (K, O)
    config : MappingConfig
        Base config; each layout name from :data:`~xbar_circuit.mapping.PRESETS`
        sets its column and row order.
    circuit : CircuitParams, MappingCircuit or Crossbar template
    layouts : list of str
    lut_path : str, optional
        Lookup table file for the estimated column NF.
    search_evals : int
        When > 0, also run the layout search from the MDM layout with this budget of
        exact solves per tile (reported as layout ``"search"``).
    search_tiles : int, optional
        Search only the this-many tiles with the highest MDM bit-weighted error.
    inputs : ndarray (B, K), optional
        Layer inputs (same K for every matrix): metrics under these inputs, the output
        error, and the calibration activations of the periphery and the search.
    seed : int
    objective : str, optional
        Search objective (:data:`~xbar_circuit.mapping.OBJECTIVES`); default
        ``"bw_error_cal"`` with inputs, ``"bw_error_allon"`` without.
    moves : tuple of str
        Search moves, ``("rows", "columns")`` by default.
    periphery : Periphery, optional
        Readout of the output error; calibrated on ``inputs`` when it needs it.
    workers, scheduler
        Parallel search, as in :func:`~xbar_circuit.mapping.search_layer`.
    progress : bool
        Show a progress bar on standard error: one step per matrix and layout, and one
        per matrix for the search.
    compensate : bool
        Also program every layout (and the search result) with conductances compensated
        for the circuit (:func:`~xbar_circuit.mapping.compensate_layer`, on ``inputs``
        when given), reported as layout ``"<layout>+compensation"`` with a
        ``compensation`` summary.
    g_max : float, optional
        Highest programmable conductance for compensation, siemens (default twice the
        mapping's ON conductance).

    Raises
    ------
    MappingError
        For negative ``search_evals``/``search_tiles``, inputs whose width is not the
        K of every matrix, or a periphery that needs calibration without inputs.
    """
    search_evals = check_int("search_evals", search_evals, 0, error=MappingError)
    if search_tiles is not None:
        search_tiles = check_int("search_tiles", search_tiles, 0, error=MappingError)
    if inputs is not None:
        inputs = np.asarray(inputs)
        if inputs.ndim not in (1, 2):
            raise MappingError(f"inputs must have shape (K,) or (B, K), got {inputs.shape}")
        for name, w in weights.items():
            if inputs.shape[-1] != w.shape[0]:
                raise MappingError(f"inputs have {inputs.shape[-1]} features per vector but "
                                   f"matrix {name!r} has K={w.shape[0]} rows (shape "
                                   f"{tuple(w.shape)}); the inputs must be (B, {w.shape[0]})")
        inputs = np.atleast_2d(inputs)
    periphery = periphery or Periphery()
    if periphery.needs_calibration and inputs is None:
        raise MappingError(f"the periphery ({periphery.label()}) is calibrated on activations: "
                           "give --inputs")
    if objective is None:
        objective = "bw_error_cal" if inputs is not None else "bw_error_allon"
    if objective not in OBJECTIVES:
        raise MappingError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                           f"{objective!r}")
    circ = as_circuit(circuit)
    lut = load_lut(lut_path)
    report: dict[str, Any] = {
        "metrics": dict(METRICS),
        "primary_metric": "bw_error_allon (bit-weighted error, all-on)",
        "config": config.to_dict(), "circuit": circ.to_dict() if circ else None,
        "periphery": periphery.to_dict(),
        "lut": {"path": lut_path, "available": lut is not None}, "layers": {}}
    base = {k: v for k, v in config.to_dict().items() if k not in ("column_order", "row_order")}

    def evaluate(layer: MappedLayer) -> dict[str, Any]:
        cal = None
        if inputs is not None and periphery.needs_calibration:
            cal = calibrate_layer(layer, inputs, circ, periphery)
        nf = layer_nf(layer, circ, inputs, lut=lut, periphery=None if cal else periphery,
                      calibration=cal)
        return {**nf.to_dict(), **layer.summary()}

    compensated = None
    if compensate:
        if circ is None:
            raise MappingError("--compensate needs a circuit with wire resistance")
        if g_max is not None:
            g_max = check_real("g_max", g_max, 0.0, None, error=MappingError, unit="S")
            top = float(config.level_array[-1])
            if g_max < top:                  # refuse before any layer is evaluated
                raise MappingError(f"g_max = {format_si(g_max, 'S')} is below the mapping's "
                                   f"top level {format_si(top, 'S')} (g_on)")
        if g_max is None:                    # compensate_layer's default, reported
            g_max = 2.0 * float(config.g_on)
        report["compensation"] = {"g_max": g_max, "x_cal": inputs is not None}

        def compensated(layer: MappedLayer) -> dict[str, Any]:
            start = time.perf_counter()
            programmed = compensate_layer(layer, circ, x_cal=inputs, g_max=g_max)
            return {**evaluate(programmed), "compensation": compensation_summary(programmed),
                    "seconds": time.perf_counter() - start}

    per_matrix = (len(layouts) + (1 if search_evals > 0 else 0)) * (2 if compensate else 1)
    bar = progress_bar(len(weights) * per_matrix, "map", unit="step", enabled=progress)
    try:
        for name, w in weights.items():
            report["layers"][name] = _map_matrix(
                name, w, base, circ, layouts, evaluate, bar, search_evals=search_evals,
                search_tiles=search_tiles, inputs=inputs, seed=seed, objective=objective,
                moves=moves, workers=workers, scheduler=scheduler, compensated=compensated)
    finally:
        bar.close()
    return report


def _map_matrix(name: str, w: np.ndarray, base: dict[str, Any], circ: Any,
                layouts: list[str], evaluate: Any, bar: Any, *, search_evals: int,
                search_tiles: int | None, inputs: np.ndarray | None, seed: int,
                objective: str, moves: tuple[str, ...], workers: int | None,
                scheduler: str | None, compensated: Any = None) -> dict[str, Any]:
    """One matrix of :func:`run_map`: every layout, then the search (each also
    compensated when ``compensated`` evaluates a compensated layer)."""
    entry: dict[str, Any] = {"shape": list(w.shape)}
    mdm_layer = None
    for layout in layouts:
        bar.set_postfix_str(f"{name} {layout}")
        start = time.perf_counter()
        layer = map_layer(w, MappingConfig.preset(layout, **base))
        entry[layout] = {**evaluate(layer), "seconds": time.perf_counter() - start}
        if layout == "mdm":
            mdm_layer = layer
        bar.update(1)
        if compensated is not None:
            bar.set_postfix_str(f"{name} {layout}+compensation")
            entry[f"{layout}+compensation"] = compensated(layer)
            bar.update(1)
    if search_evals > 0:
        bar.set_postfix_str(f"{name} search")
        if mdm_layer is None:
            mdm_layer = map_layer(w, MappingConfig.preset("mdm", **base))
        start = time.perf_counter()
        scores = [t["bw_error_allon"] for t in layer_nf(mdm_layer, circ).tiles]
        order = np.argsort(scores)[::-1]
        chosen = order[:search_tiles] if search_tiles else order
        searched, results = search_layer(
            mdm_layer, circ, tiles=[int(i) for i in chosen], x=inputs,
            objective=objective, moves=moves, max_evals=search_evals, seed=seed,
            workers=workers, scheduler=scheduler)
        entry["search"] = {**evaluate(searched), "objective": objective,
                           "moves": list(moves),
                           "searched_tiles": [int(i) for i in chosen],
                           "tile_objective_start": [r.start for r in results],
                           "tile_objective_best": [r.best for r in results],
                           "seconds": time.perf_counter() - start}
        bar.update(1)
        if compensated is not None:
            bar.set_postfix_str(f"{name} search+compensation")
            entry["search+compensation"] = compensated(searched)
            bar.update(1)
    return entry


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
            values = [t["bw_error_allon"] for t in entry[layout]["tiles"]]
            ax.plot(np.arange(len(values)), values, "o-", ms=3, label=layout)
        ax.set_xlabel("tile index")
        ax.set_ylabel("bit-weighted error (all-on)")
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
@click.option("--transpose/--no-transpose", default=None,
              help="Force 2-D tensors to be read as PyTorch (O, K) and transposed, or as "
                   "(K, O). Default: tensors named '<module>.weight' are transposed, conv "
                   "weights lowered, .npy read as (K, O), anything else refused.")
@click.option("--layouts", default=None,
              help=f"Comma-separated layouts from: {', '.join(PRESETS)} "
                   "[naive,planes_high_first,mdm].")
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
@click.option("--template", "template_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Crossbar spec (JSON) whose wires, device and periphery every "
                                 "tile uses (its conductances are ignored); replaces --r-*.")
@click.option("--adc-bits", type=click.IntRange(1, 16), default=None,
              help="Per-column ADC bits [none: exact readout].")
@click.option("--calibration", type=click.Choice(["none", "gain", "gain_offset"]), default=None,
              help="Per-column digital calibration on --inputs [none].")
@click.option("--inputs", "inputs_path", type=click.Path(exists=True, dir_okay=False),
              help=".npy of layer inputs (B, K): metrics under these inputs, output error, "
                   "calibration activations.")
@click.option("--lut", "lut_path", default=None, help="Lookup table for estimated column NF.")
@click.option("--search-evals", type=click.IntRange(min=0), default=0, show_default=True,
              help="Budget of exact solves per tile of the layout search from MDM (0 = off).")
@click.option("--search-tiles", type=click.IntRange(min=0), default=None,
              help="Search only the N tiles with the highest MDM bit-weighted error.")
@click.option("--objective", type=click.Choice(list(OBJECTIVES)), default=None,
              help="Search objective [bw_error_cal with --inputs, else bw_error_allon].")
@click.option("--moves", default="rows,columns", show_default=True,
              help="Search moves: rows, columns or both.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Search in a local Dask cluster of N processes [one per core].")
@click.option("--serial", is_flag=True, help="Search in this process, without Dask.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Search on a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--compensate", is_flag=True,
              help="Also program each layout with conductances compensated for the circuit "
                   "(on --inputs when given); reported as '<layout>+compensation'.")
@click.option("--g-prog-max", "g_max", type=float, default=None,
              help="With --compensate: highest programmable conductance (S) [2 x g_on].")
@click.option("--out-dir", type=click.Path(file_okay=False), default="xbar-map-out",
              show_default=True, help="Folder where report.json and the plots go.")
@refuse_short_o("map")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@common_options
def map_command(weights: str, config_path: str | None, tensor: str | None,
                transpose: bool | None, layouts: str | None, tile: str | None,
                bits: int | None, bits_per_cell: int | None, sign: str | None,
                g_on: float | None, g_off: float | None, r_row: float | None,
                r_col: float | None, r_driver: float | None, r_sense: float | None,
                template_path: str | None, adc_bits: int | None, calibration: str | None,
                inputs_path: str | None, lut_path: str | None, search_evals: int,
                search_tiles: int | None, objective: str | None, moves: str,
                workers: int | None, serial: bool, scheduler: str | None, compensate: bool,
                g_max: float | None, out_dir: str, no_plots: bool, as_json: bool) -> None:
    """Map the weight matrices of WEIGHTS (.npy, .npz or .safetensors) onto crossbars
    and report the bit-weighted error (and column NF) of each layout per tile and layer."""
    if serial and scheduler:
        raise click.UsageError("--serial and --scheduler exclude each other")
    if g_max is not None and not compensate:
        raise click.UsageError("--g-prog-max is the ceiling of compensated programming: it needs "
                               "--compensate")
    try:
        if g_max is not None:
            g_max = check_real("--g-prog-max", g_max, 0.0, None, error=MappingError, unit="S")
        cfg_data: dict[str, Any] = {}
        if config_path:
            try:
                text = Path(config_path).read_bytes()
            except OSError as exc:
                raise click.BadParameter(f"cannot read {config_path}: {exc.strerror}") from None
            cfg_data = load_json(text, f"--config file {config_path}", error=MappingError)
            if not isinstance(cfg_data, dict):
                raise click.BadParameter("the config must be a JSON object")
        mapping = dict(cfg_data.get("mapping", {}))
        overrides = {"weight_bits": bits, "bits_per_cell": bits_per_cell, "sign": sign,
                     "g_on": g_on, "g_off": g_off}
        mapping.update({k: v for k, v in overrides.items() if v is not None})
        if tile:
            mapping["tile_rows"], mapping["tile_cols"] = _parse_tile(tile)
        config = MappingConfig.from_dict(mapping)
        if template_path:
            from ..spec import Crossbar

            circuit: Any = Crossbar.load(template_path)
        else:
            circ = {"r_row": 1.0, "r_col": 1.0, "r_driver": 0.0, "r_sense": 0.0,
                    **cfg_data.get("circuit", {})}
            circ.update({k: v for k, v in {"r_row": r_row, "r_col": r_col,
                                           "r_driver": r_driver,
                                           "r_sense": r_sense}.items() if v is not None})
            circuit = CircuitParams(**circ)
        names = (layouts.split(",") if layouts else
                 cfg_data.get("layouts", ["naive", "planes_high_first", "mdm"]))
        names = [n.strip() for n in names]
        for n in names:
            if n not in PRESETS:
                raise click.BadParameter(f"unknown layout {n!r}; known: {', '.join(PRESETS)}")
        move_list = tuple(m.strip() for m in moves.split(",") if m.strip())
        periphery = Periphery(adc_bits=adc_bits, calibration=calibration or "none")
        notes: list[str] = []
        matrices = load_weights(weights, tensor, transpose=transpose, notes=notes)
        inputs = load_array(inputs_path, "inputs") if inputs_path else None
        report = run_map(matrices, config, circuit, names, lut_path=lut_path,
                         search_evals=search_evals, search_tiles=search_tiles, inputs=inputs,
                         objective=objective, moves=move_list, periphery=periphery,
                         workers=0 if serial else workers, scheduler=scheduler,
                         progress=state().progress, compensate=compensate, g_max=g_max)
    except (XbarError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report["weights_file"] = str(weights)
    report["orientation"] = notes
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    plots = [] if no_plots else _plot(report, out)
    for note in notes:
        log.info("orientation: %s", note)
    if lut_path and not report["lut"]["available"]:
        log.warning("LUT %s unavailable (xbar_circuit.tables.LookupTable not importable)",
                    lut_path)
    if as_json:
        emit_json({**report, "out_dir": str(out), "files": [str(out / "report.json"), *plots]})
        return
    circ_d = report["circuit"] or {}
    click.echo(f"circuit: r_row={circ_d.get('r_row')} ohm, r_col={circ_d.get('r_col')} ohm, "
               f"r_driver={circ_d.get('r_driver')} ohm, r_sense={circ_d.get('r_sense')} ohm, "
               f"device {circ_d.get('device')}; g_on={format_si(config.level_array[-1], 'S')}, "
               f"g_off={format_si(config.level_array[0], 'S')}; "
               f"tile {config.tile_rows}x{config.tile_cols}, "
               f"{config.weight_bits}-bit weights, {config.bits_per_cell} bit(s)/cell; "
               f"readout: {periphery.label()}")
    click.echo("metric: BW = bit-weighted (shift-and-add) error, every real row at v_read "
               "(all-on); column NF (secondary) = mean column (I_ideal - I)/I_ideal")
    shown = [*names, *(["search"] if search_evals > 0 else [])]
    if compensate:
        shown = [n for layout in shown for n in (layout, f"{layout}+compensation")]
    click.echo("| layer | shape | tiles | " + " | ".join(f"BW {n}" for n in shown)
               + " | " + " | ".join(f"NF {n}" for n in shown) + " |"
               + (" output error (mdm) |" if inputs is not None and "mdm" in shown else "")
               + (" NF LUT (mdm) |" if report["lut"]["available"] and "mdm" in shown else ""))
    for name, entry in report["layers"].items():
        cells = [f"{entry[n]['bw_error_allon']:.3g}" for n in shown]
        cells += [f"{entry[n]['layer_nf_allon']:.3g}" for n in shown]
        line = (f"| {name} | {entry['shape'][0]}x{entry['shape'][1]} | "
                f"{len(entry[shown[0]]['tiles'])} | " + " | ".join(cells) + " |")
        if inputs is not None and "mdm" in shown:
            line += f" {entry['mdm']['output_error']:.4f} |"
        if report["lut"]["available"] and "mdm" in entry:
            line += f" {entry['mdm']['layer_nf_lut']:.4f} |"
        click.echo(line)
    if compensate:
        for name, entry in report["layers"].items():
            for n in shown:
                if "compensation" in entry.get(n, {}):
                    c = entry[n]["compensation"]
                    click.echo(f"compensation {name} {n}: objective {c['error_before']:.3g} -> "
                               f"{c['error_after']:.3g} (worst tile), {c['cells_at_g_max']} "
                               f"cell(s) at g_max, {c['not_converged']} tile(s) not "
                               f"converged, {c['seconds']:.1f} s")
    click.echo(f"wrote {out / 'report.json'}" + (f" and {len(plots)} plot(s)" if plots else ""))
