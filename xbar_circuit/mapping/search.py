"""Circuit-in-the-loop layout search: row and column moves judged by exact solves.

MDM's row sort minimizes the summed Manhattan distance of the active cells, a proxy for
the IR drop, and is already a local optimum for row swaps under the column NF. Two
levers remain: columns can be permuted freely (the recombination reads each column's
output and slice from the tile, so it is digital bookkeeping), and the objective can
be what the network sees: the bit-weighted error on real activations after the
per-column calibration the periphery applies anyway.

:func:`search_tile` starts from a tile's current layout and tries swaps of two rows
(random pairs and physical neighbours) and of two columns (random pairs, padding
included, so a column may move into an unused position). A move is kept only when
the exact objective, from a solve of the trial tile with :func:`xbar_circuit.solve`,
decreases; the result is never worse than the start. :func:`search_layer` runs it on
many tiles, in this process or in parallel on Dask (a local cluster, or a running
scheduler as ``xbar calibrate --scheduler``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._dask import run_on_dask
from .._validate import check_int
from ..api import solve
from .circuit import (
    _bw_parts,
    _bw_ratio,
    _nf_from_currents,
    _passes,
    _resolve_tile,
    _route,
    _stimulus,
    as_circuit,
    tile_crossbar,
)
from .layout import MappedLayer, Tile
from .quantize import MappingError, quantize_inputs
from .readout import fit_column_gain

__all__ = ["OBJECTIVES", "SearchResult", "search_tile", "search_row_order", "search_layer",
           "tile_objective"]

OBJECTIVES: dict[str, str] = {
    "bw_error_cal": "bit-weighted error on calibration activations after per-column "
                    "gain/offset calibration: RMS over channels and vectors of the "
                    "shift-added calibrated digit-sum error over the RMS of the ideal "
                    "shift-added digit sum (default)",
    "bw_error": "bit-weighted error on the activations (DAC voltages of |x|), uncalibrated: "
                "mean over channels of sum_s 2**(b*s) (I_ideal - I) / sum_s 2**(b*s) I_ideal",
    "bw_error_allon": "bit-weighted error with every real row at v_read",
    "nf": "column NF with every real row at v_read, or under |x| when activations are "
          "given (MDM's own criterion)",
}
"""Search objectives by name (all dimensionless; lower is better)."""

MOVES = ("rows", "columns")


@dataclass
class SearchResult:
    """Outcome of :func:`search_tile`.

    Attributes
    ----------
    tile : Tile
        The tile with the best layout found (bookkeeping updated, ideal result unchanged).
    objective : str
        Name from :data:`OBJECTIVES`.
    start, best : float
        Exact objective before and after.
    evaluations : int
        Exact solves made (the start counts as one).
    accepted : int
        Improving moves kept.
    accepted_columns : int
        Of which column swaps.
    seconds : float
    history : list of float
        Best objective after each evaluation.
    index : int
        Index of the tile in its layer (-1 when searched standalone).
    """

    tile: Tile
    objective: str
    start: float
    best: float
    evaluations: int
    accepted: int
    accepted_columns: int
    seconds: float
    history: list[float] = field(default_factory=list)
    index: int = -1

    @property
    def reduction(self) -> float:
        """Relative reduction ``1 - best / start`` (dimensionless)."""
        return 1.0 - self.best / self.start if self.start else 0.0

    @property
    def nf_start(self) -> float:
        """Alias of :attr:`start`."""
        return self.start

    @property
    def nf_best(self) -> float:
        """Alias of :attr:`best`."""
        return self.best


def tile_objective(layer: MappedLayer, tile: Tile, circuit: Any, objective: str,
                   x_int: np.ndarray | None = None) -> float:
    """Exact value of a search objective for one tile (one solve of the tile).

    Parameters
    ----------
    layer : MappedLayer
    tile : Tile
    circuit : CircuitParams, MappingCircuit or Crossbar template
    objective : str
        A name from :data:`OBJECTIVES`.
    x_int : ndarray (B, K) of int, optional
        Integer layer inputs; required by ``bw_error_cal`` and ``bw_error``.

    Returns
    -------
    float
    """
    circ = as_circuit(circuit)
    if circ is None:
        raise MappingError("the search needs a circuit (None is the ideal one)")
    if objective not in OBJECTIVES:
        raise MappingError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                           f"{objective!r}")
    if objective in ("bw_error_cal", "bw_error") and x_int is None:
        raise MappingError(f"objective {objective!r} needs activations (x)")
    xbar = tile_crossbar(tile, circ, layer)
    if objective != "bw_error_cal":
        v = _stimulus(layer, tile, None if objective == "bw_error_allon" else x_int)
        ideal = v @ tile.conductance
        actual = np.atleast_2d(solve(xbar, v, backend=circ.backend).column_currents)
        if objective == "nf":
            return _nf_from_currents(ideal, actual, tile.real_columns)["nf"]
        return _bw_ratio(*_bw_parts(layer, tile, ideal, actual))
    cfg = layer.config
    xt = _route(layer, tile, x_int)  # type: ignore[arg-type]
    passes = list(_passes(cfg, xt))
    volts = np.concatenate([v for _, v, _ in passes], axis=0)
    currents = np.atleast_2d(solve(xbar, volts, backend=circ.backend).column_currents)
    g0, dg = cfg.level_array[0], cfg.g_step
    read = np.zeros((xt.shape[0], tile.shape[1]))
    start = 0
    for factor, v, unit in passes:
        part = currents[start:start + v.shape[0]]
        start += v.shape[0]
        read += factor * (part - g0 * v.sum(axis=1, keepdims=True)) / (dg * unit)
    ideal = (xt @ tile.digits).astype(np.float64)
    gain, offset = fit_column_gain(read, ideal, with_offset=True)
    err, ref = _bw_parts(layer, tile, ideal, read * gain + offset)
    denom = np.sqrt(np.mean(ref**2))
    return float(np.sqrt(np.mean(err**2)) / denom) if denom > 0 else float("nan")


def _check_budget(max_evals: Any) -> int:
    return check_int("max_evals", max_evals, 1, error=MappingError)


def _check_moves(moves: Sequence[str]) -> tuple[str, ...]:
    if isinstance(moves, str):
        moves = (moves,)
    moves = tuple(moves)
    if not moves or any(m not in MOVES for m in moves):
        raise MappingError(f"moves must be a non-empty subset of {', '.join(MOVES)}, got "
                           f"{moves!r}")
    return moves


def search_tile(layer: MappedLayer, tile: Tile | int, circuit: Any, *,
                x_int: np.ndarray | None = None, objective: str = "bw_error_cal",
                moves: Sequence[str] = MOVES, max_evals: int = 100,
                time_limit: float | None = None, seed: int = 0) -> SearchResult:
    """Improve a tile's row and column order by local search on an exact objective.

    Parameters
    ----------
    layer : MappedLayer
        The layer the tile belongs to (for its config).
    tile : Tile or int
        Start tile (its current layout is the start point) or its index.
    circuit : CircuitParams, MappingCircuit or Crossbar template
        Circuit of the exact objective.
    x_int : ndarray (B, K) of int, optional
        Integer calibration inputs of the layer (needed by the activation objectives).
    objective : str
        A name from :data:`OBJECTIVES` (default ``"bw_error_cal"``).
    moves : sequence of {"rows", "columns"}
        Which swaps to try (default both).
    max_evals : int
        Budget of exact solves (the start counts as one).
    time_limit : float, optional
        Stop after this many seconds.
    seed : int
        Seed of the move generator.

    Returns
    -------
    SearchResult
        ``best <= start`` always.
    """
    max_evals = _check_budget(max_evals)
    moves = _check_moves(moves)
    index = -1 if isinstance(tile, Tile) else int(tile)
    tile = _resolve_tile(layer, tile)
    if x_int is not None:
        x_int = np.asarray(x_int)
        if x_int.ndim != 2 or x_int.shape[1] != layer.shape[0]:
            raise MappingError(f"x_int must have shape (B, {layer.shape[0]}), got {x_int.shape}")
    start_time = time.perf_counter()
    rng = np.random.default_rng(seed)
    best_tile = tile
    best = tile_objective(layer, tile, circuit, objective, x_int)
    start, history = best, [best]
    evals, accepted, accepted_cols = 1, 0, 0
    real_rows = np.flatnonzero(tile.rows >= 0)
    movable_cols = np.flatnonzero(~tile.reference_columns)
    can_rows = "rows" in moves and real_rows.size >= 2
    can_cols = "columns" in moves and tile.real_columns.sum() >= 1 and movable_cols.size >= 2
    tries = 0
    while (can_rows or can_cols) and evals < max_evals and tries < 50 * max_evals:
        tries += 1
        if time_limit is not None and time.perf_counter() - start_time > time_limit:
            break
        column_move = can_cols and (not can_rows or rng.random() < 0.5)
        if column_move:
            i, j = (int(v) for v in rng.choice(movable_cols, size=2, replace=False))
            if best_tile.col_output[i] < 0 and best_tile.col_output[j] < 0:
                continue  # two padding columns: nothing changes
            order = np.arange(tile.shape[1])
            order[i], order[j] = j, i
            trial = best_tile.with_column_order(order)
        else:
            if rng.random() < 0.5:
                i = int(rng.choice(real_rows[:-1]))
                j = int(real_rows[np.searchsorted(real_rows, i) + 1])
            else:
                i, j = (int(v) for v in rng.choice(real_rows, size=2, replace=False))
            if np.array_equal(best_tile.digits[i], best_tile.digits[j]) and x_int is None:
                continue  # identical rows under a uniform stimulus: nothing changes
            order = np.arange(tile.shape[0])
            order[i], order[j] = j, i
            trial = best_tile.with_row_order(order)
        value = tile_objective(layer, trial, circuit, objective, x_int)
        evals += 1
        if value < best:
            best, best_tile = value, trial
            accepted += 1
            accepted_cols += int(column_move)
        history.append(best)
    return SearchResult(best_tile, objective, start, best, evals, accepted, accepted_cols,
                        time.perf_counter() - start_time, history, index)


def search_row_order(layer: MappedLayer, tile: Tile | int, circuit: Any, *,
                     x_int: np.ndarray | None = None, max_evals: int = 100,
                     time_limit: float | None = None, seed: int = 0) -> SearchResult:
    """Row swaps only, on the column NF (all-on, or under ``x_int``): MDM's own criterion.

    ``search_tile(..., moves=("rows",), objective="nf")``; see :func:`search_tile`.
    """
    return search_tile(layer, tile, circuit, x_int=x_int, objective="nf", moves=("rows",),
                       max_evals=max_evals, time_limit=time_limit, seed=seed)


def _strip(layer: MappedLayer) -> MappedLayer:
    """The layer without cached G_eff matrices (lighter to send to workers)."""
    return dataclasses.replace(layer, tiles=tuple(dataclasses.replace(t, cache={})
                                                  for t in layer.tiles))


def _search_task(layer: MappedLayer, index: int, circuit: Any, kwargs: dict[str, Any]
                 ) -> SearchResult:
    res = search_tile(layer, index, circuit, **kwargs)
    res.tile = dataclasses.replace(res.tile, cache={})
    return res


def search_layer(layer: MappedLayer, circuit: Any, *, tiles: Sequence[int] | None = None,
                 x: ArrayLike | None = None, input_scale: float | str = "dynamic",
                 objective: str = "bw_error_cal", moves: Sequence[str] = MOVES,
                 max_evals: int = 100, time_limit: float | None = None, seed: int = 0,
                 workers: int | None = 0, scheduler: str | None = None
                 ) -> tuple[MappedLayer, list[SearchResult]]:
    """Run :func:`search_tile` on several tiles (in parallel on Dask) and return the layer.

    Parameters
    ----------
    layer : MappedLayer
    circuit : CircuitParams, MappingCircuit or Crossbar template
    tiles : sequence of int, optional
        Tile indices to search (default: every tile).
    x : array_like (B, K), optional
        Calibration activations (real units) for the activation objectives.
    input_scale : float or "dynamic"
        Quantization scale of ``x``.
    objective, moves, max_evals, time_limit, seed
        Per tile, as in :func:`search_tile` (tile ``i`` uses seed ``seed + i``).
    workers : int or None
        0 (default): in this process. ``n`` > 0: a local Dask cluster of n processes;
        None: one per core. Ignored when ``scheduler`` is given; a single tile is
        always searched in this process (a cluster would only add start-up time).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``), as in
        ``xbar calibrate --scheduler``.

    Returns
    -------
    (MappedLayer, list of SearchResult)

    Raises
    ------
    MappingError
        For invalid arguments, or when the scheduler does not answer within
        :data:`xbar_circuit._dask.CONNECT_TIMEOUT` seconds.
    """
    _check_budget(max_evals)
    _check_moves(moves)
    if workers is not None:
        workers = check_int("workers", workers, 0, error=MappingError)
    if scheduler is not None and not isinstance(scheduler, str):
        raise MappingError(f"scheduler must be an address string, got {scheduler!r}")
    indices = list(range(len(layer.tiles))) if tiles is None else [int(i) for i in tiles]
    for i in indices:
        _resolve_tile(layer, i)
    x_int = None if x is None else quantize_inputs(x, layer.config.input_bits, input_scale).q
    if x_int is not None and x_int.shape[1] != layer.shape[0]:
        raise MappingError(f"x must have shape (B, {layer.shape[0]}), got "
                           f"{np.shape(x)}")  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {"x_int": x_int, "objective": objective, "moves": tuple(moves),
              "max_evals": max_evals, "time_limit": time_limit}
    if scheduler is None and (workers == 0 or len(indices) <= 1):
        results = [search_tile(layer, i, circuit, seed=seed + i, **kwargs) for i in indices]
    else:
        results = _run_dask(_strip(layer), indices, circuit, kwargs, seed, workers, scheduler)
    for res in results:
        layer = layer.with_tile(res.index, res.tile)
    return layer, results


def _run_dask(layer: MappedLayer, indices: list[int], circuit: Any, kwargs: dict[str, Any],
              seed: int, workers: int | None, scheduler: str | None) -> list[SearchResult]:
    results: list[SearchResult | None] = [None] * len(indices)

    def submit(client: Any, _n_workers: int) -> list[Any]:
        remote_layer = client.scatter(layer, broadcast=True)
        return [client.submit(_search_task, remote_layer, i, circuit,
                              {**kwargs, "seed": seed + i}, pure=False) for i in indices]

    def on_result(position: int, result: SearchResult) -> None:
        results[position] = result

    run_on_dask(submit, on_result, workers=workers, scheduler=scheduler,
                purpose="search_layer() with Dask workers", error=MappingError)
    return [res for res in results if res is not None]
