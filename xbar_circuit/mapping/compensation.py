"""Compensated tiles: program each tile so that its circuit computes the mapped weights.

:func:`compensate_layer` runs :func:`xbar_circuit.compensate.compensate` on every tile of
a mapped layer under the nominal circuit (wires, drivers, sense, device; no variability
or faults, which are unknown when programming) and returns the layer with each tile's
``programmed`` conductances set. Every metric of the package (:func:`layer_nf`,
:func:`output_error`, :func:`layer_output`) then solves the circuit with the programmed
conductances and compares with the mapping's conductances, so the bit-weighted error of
a compensated mapping is measured exactly like that of any other layout, and a
:class:`MappingCircuit` with ``sigma > 0`` applies programming variability on top of the
compensated conductances.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_real
from ..compensate import compensate
from .circuit import MappingCircuit, _stimulus, as_circuit
from .layout import MappedLayer
from .quantize import MappingError, quantize_inputs

__all__ = ["compensate_layer", "compensation_summary"]


def compensate_layer(
    layer: MappedLayer, circuit: Any, *, x_cal: ArrayLike | None = None,
    g_max: float | None = None, levels: ArrayLike | None = None,
    input_scale: float | str = "dynamic", fixed_point_iterations: int = 20,
    max_iter: int = 0, tol: float | None = None,
) -> MappedLayer:
    """Return ``layer`` with every tile's conductances compensated for its circuit.

    Parameters
    ----------
    layer : MappedLayer
        The mapped layer (any layout: naive, MDM, searched).
    circuit : CircuitParams, MappingCircuit or Crossbar template
        The tiles' circuit. Its variability and faults are ignored here (compensation
        sees the nominal circuit); measure with the full circuit afterwards.
    x_cal : array_like (B, K), optional
        Real calibration activations: each tile is compensated for the output error on
        their DAC voltages. Default: the input-independent objective on the effective
        conductance (linear cells: ``G_eff``; nonlinear cells: the operating-point
        conductance at ``config.v_read``, exact for one-row reads).
    g_max : float, optional
        Highest programmable conductance, siemens (default ``2 * config.g_on``, i.e. the
        top level of the mapping doubled). Compensation raises the cells that IR drop
        starves, so it needs headroom above the mapping's top level; the lowest
        programmable conductance is the mapping's lowest level.
    levels : array_like, optional
        Programmable conductance levels of the device, siemens, inside
        ``[levels[0] of the mapping, g_max]`` (e.g. 16 levels for 4-bit cells); the
        compensated conductances are rounded to them.
    input_scale : float or "dynamic"
        Quantization scale of ``x_cal`` (see :func:`~xbar_circuit.mapping.quantize_inputs`).
    fixed_point_iterations, max_iter, tol
        As in :func:`~xbar_circuit.compensate.compensate` (``max_iter`` L-BFGS-B
        iterations after the fixed point; each costs 2 R solves per tile, so the default
        is the fixed point only).

    Returns
    -------
    MappedLayer
        Same tiles, keys and layout, each with ``programmed`` set; each tile's
        ``cache["compensation"]`` holds ``error_before``, ``error_after``,
        ``iterations``, ``converged``, ``message``, ``cells_at_g_max`` (cells the range
        clipped) and ``seconds`` (see :func:`compensation_summary`).

    Raises
    ------
    MappingError
        For an ideal circuit (nothing to compensate) or calibration inputs of the wrong
        width.
    xbar_circuit.compensate.TargetRangeError, xbar_circuit.compensate.CompensationError
        As raised by :func:`~xbar_circuit.compensate.compensate`.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit.mapping import CircuitParams, MappingConfig, layer_nf, map_layer
    >>> from xbar_circuit.mapping import compensate_layer
    >>> w = np.random.default_rng(0).normal(size=(32, 8))
    >>> layer = map_layer(w, MappingConfig(tile_rows=32, tile_cols=32))
    >>> circuit = CircuitParams(r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)
    >>> comp = compensate_layer(layer, circuit)
    >>> before = layer_nf(layer, circuit).bw_error_allon
    >>> bool(layer_nf(comp, circuit).bw_error_allon < 0.01 * before)
    True
    """
    if not isinstance(layer, MappedLayer):
        raise MappingError(f"layer must be a MappedLayer (map_layer's result), got "
                           f"{type(layer).__name__}")
    circ = as_circuit(circuit)
    if circ is None or (circ.template.is_ideal and circ.template.is_default_topology
                        and circ.is_linear):
        raise MappingError("an ideal circuit computes the mapping exactly: nothing to "
                           "compensate")
    nominal = MappingCircuit(circ.template, backend=circ.backend)
    cfg = layer.config
    lv = cfg.level_array
    g_lo = float(lv[0])
    g_hi = 2.0 * float(cfg.g_on) if g_max is None else check_real(
        "g_max", g_max, 0.0, error=MappingError, unit="S")
    if not g_hi >= float(lv[-1]):
        raise MappingError(f"g_max = {g_hi:g} S is below the mapping's top level "
                           f"{float(lv[-1]):g} S")
    x_int = None
    if x_cal is not None:
        x_int = quantize_inputs(x_cal, cfg.input_bits, input_scale).q
        if x_int.ndim != 2 or x_int.shape[1] != layer.shape[0]:
            raise MappingError(f"x_cal must have shape (B, {layer.shape[0]}), got "
                               f"{np.shape(x_cal)}")
    tiles = []
    for tile in layer.tiles:
        start = time.perf_counter()
        xbar = nominal.crossbar(tile.conductance, tile.key)
        v_cal = None if x_int is None else _stimulus(layer, tile, x_int)
        if v_cal is not None:
            v_cal = v_cal[np.any(v_cal != 0.0, axis=1)]
            if not np.any(v_cal @ tile.conductance):
                v_cal = None                       # this tile sees no input: G_eff objective
        result = compensate(xbar, g_off=g_lo, g_on=g_hi, levels=levels, v_cal=v_cal,
                            v_read=cfg.v_read, fixed_point_iterations=fixed_point_iterations,
                            max_iter=max_iter, tol=tol)
        new = dataclasses.replace(tile, cache={}, programmed=np.array(result.g_prog))
        new.cache["compensation"] = {
            "error_before": result.error_before, "error_after": result.error_after,
            "iterations": result.iterations, "converged": result.converged,
            "message": result.message,
            "cells_at_g_max": int(np.sum(result.g_prog >= g_hi * (1 - 1e-12))),
            "seconds": time.perf_counter() - start}
        tiles.append(new)
    return dataclasses.replace(layer, tiles=tuple(tiles))


def compensation_summary(layer: MappedLayer) -> dict[str, Any]:
    """What :func:`compensate_layer` reached on a layer (dimensionless errors, seconds).

    Returns
    -------
    dict
        ``tiles`` (compensated tiles), ``error_before`` / ``error_after`` (largest over
        tiles of the compensation objective's relative error), ``not_converged`` (tiles
        whose optimization stopped on its iteration cap), ``cells_at_g_max`` (cells
        programmed at the top of the range, where compensation is range-limited) and
        ``seconds`` (total).
    """
    rows = [t.cache["compensation"] for t in layer.tiles if "compensation" in t.cache]
    if not rows:
        return {"tiles": 0}
    return {"tiles": len(rows),
            "error_before": max(r["error_before"] for r in rows),
            "error_after": max(r["error_after"] for r in rows),
            "not_converged": sum(not r["converged"] for r in rows),
            "cells_at_g_max": sum(r["cells_at_g_max"] for r in rows),
            "seconds": sum(r["seconds"] for r in rows)}
