"""Closed-form loss models and the exact computation of one grid point.

Given the cell currents ``I`` (M, N), the wire network fixes every node voltage exactly
(Kirchhoff's current law along each line; circuit of docs/convention.md §1)::

    drop at r(i, j) = r_driver * sum_k I[i, k] + r_row * sum_{s<=j} sum_{k>=s} I[i, k]
    rise at c(i, j) = r_sense  * sum_l I[l, j] + r_col * sum_{s>=i} sum_{l<=s} I[l, j]

Write ``A(I)`` for drop + rise; then the cell voltages solve ``V = v - A(G * V)``. Its
Neumann series ``V = v - t1 + t2 - ...`` with ``t1 = A(G v)``, ``t2 = A(G t1)`` costs
O(M·N) per term. :func:`model_loss` uses the cell-wise Padé form ``t1**2 / (t1 + t2)``
(exact when the loss is geometric), the physics-based baseline that the tables correct.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["apply_wires", "compute_point", "first_order_loss", "model_loss", "nf_from_loss",
           "point_inputs"]


def apply_wires(currents: np.ndarray, r_row: float, r_col: float, r_driver: float,
                r_sense: float) -> np.ndarray:
    """Voltage lost across the wires for given cell currents.

    Parameters
    ----------
    currents : ndarray, shape (M, N)
        Current through each cell from row to column, in amperes.
    r_row, r_col, r_driver, r_sense : float
        Resistances in ohms (docs/convention.md §1).

    Returns
    -------
    ndarray, shape (M, N)
        ``V(source) - V(r(i,j)) + V(c(i,j))`` in volts: the row drop plus the column rise.
    """
    i = currents
    drop = r_row * np.cumsum(np.cumsum(i[:, ::-1], axis=1)[:, ::-1], axis=1)
    rise = r_col * np.cumsum(np.cumsum(i, axis=0)[::-1], axis=0)[::-1]
    if r_driver:
        drop = drop + r_driver * i.sum(axis=1, keepdims=True)
    if r_sense:
        rise = rise + r_sense * i.sum(axis=0, keepdims=True)
    return drop + rise


def _terms(conductance: np.ndarray, v_in: np.ndarray, r: tuple[float, float, float, float]
           ) -> tuple[np.ndarray, np.ndarray]:
    v = np.broadcast_to(np.asarray(v_in, dtype=np.float64)[:, None], conductance.shape)
    t1 = apply_wires(conductance * v, *r)
    t2 = apply_wires(conductance * t1, *r)
    return t1, t2


def _relative(values: np.ndarray, v_in: np.ndarray) -> np.ndarray:
    v = np.asarray(v_in, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v != 0, values / np.where(v != 0, v, 1.0), np.nan)


def first_order_loss(conductance: np.ndarray, v_in: np.ndarray, r_row: float, r_col: float,
                     r_driver: float = 0.0, r_sense: float = 0.0) -> np.ndarray:
    """First-order per-cell loss ``A(G v) / v`` (linear in the resistances).

    Parameters
    ----------
    conductance : ndarray, shape (M, N)
        Cell conductances in siemens.
    v_in : ndarray, shape (M,)
        Source voltages in volts.
    r_row, r_col, r_driver, r_sense : float
        Resistances in ohms.

    Returns
    -------
    ndarray, shape (M, N)
        Dimensionless loss ``1 - V_cell/V_in`` to first order; NaN on rows with V_in = 0.
    """
    t1 = apply_wires(conductance * np.asarray(v_in, dtype=np.float64)[:, None],
                     r_row, r_col, r_driver, r_sense)
    return _relative(t1, v_in)


def model_loss(conductance: np.ndarray, v_in: np.ndarray, r_row: float, r_col: float,
               r_driver: float = 0.0, r_sense: float = 0.0) -> np.ndarray:
    """Closed-form (cell-wise Padé) per-cell loss ``1 - V_cell/V_in``.

    Uses ``t1**2 / (t1 + t2)`` where the first two Neumann terms share a sign, and
    ``t1 - t2`` elsewhere.

    Parameters
    ----------
    conductance : ndarray, shape (M, N)
        Cell conductances in siemens.
    v_in : ndarray, shape (M,)
        Source voltages in volts.
    r_row, r_col, r_driver, r_sense : float
        Resistances in ohms.

    Returns
    -------
    ndarray, shape (M, N)
        Dimensionless loss; NaN on rows with V_in = 0.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.full((1, 1), 1e-3)          # one cell behind a 10-ohm driver
    >>> float(model_loss(g, np.ones(1), 0.0, 0.0, r_driver=10.0)[0, 0])  # exact: rg/(1+rg)
    0.00990099009900990...
    """
    t1, t2 = _terms(conductance, v_in, (r_row, r_col, r_driver, r_sense))
    with np.errstate(divide="ignore", invalid="ignore"):
        same = (t1 * t2 > 0) & (np.abs(t1 + t2) > 0)
        pade = np.where(same, t1 * t1 / np.where(same, t1 + t2, 1.0), t1 - t2)
    return _relative(pade, v_in)


def nf_from_loss(conductance: np.ndarray, v_in: np.ndarray, loss: np.ndarray) -> tuple[
        float, np.ndarray]:
    """Column and array NF implied by a per-cell loss map (docs/convention.md §2).

    ``NF[j] = sum_i G[i,j] v[i] loss[i,j] / sum_i G[i,j] v[i]``; the array NF is the mean
    over columns with ``I_ideal > 0``.

    Parameters
    ----------
    conductance : ndarray, shape (M, N)
        Siemens.
    v_in : ndarray, shape (M,)
        Volts.
    loss : ndarray, shape (M, N)
        Dimensionless ``1 - V_cell/V_in`` (NaN allowed where V_in = 0).

    Returns
    -------
    nf : float
        Array NF (NaN if no column has I_ideal > 0).
    nf_columns : ndarray, shape (N,)
        Column NF (NaN where I_ideal = 0).
    """
    w = conductance * np.asarray(v_in, dtype=np.float64)[:, None]
    ideal = w.sum(axis=0)
    lost = np.where(w != 0, w * np.nan_to_num(loss), 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = np.where(ideal > 0, lost / np.where(ideal > 0, ideal, 1.0), np.nan)
    valid = ~np.isnan(cols)
    nf = float(cols[valid].mean()) if valid.any() else float("nan")
    return nf, cols


def point_inputs(sweep_inputs: dict[str, Any], n_rows: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """Draw one input vector (volts) for the sweep's input pattern."""
    v_read = float(sweep_inputs["v_read"])
    pattern = sweep_inputs["pattern"]
    if pattern == "ones":
        return np.full(n_rows, v_read)
    if pattern == "random_binary":
        on = rng.random(n_rows) < float(sweep_inputs["density"])
        if not on.any():
            on[int(rng.integers(n_rows))] = True
        return np.where(on, v_read, 0.0)
    return rng.uniform(0.0, v_read, size=n_rows)


def point_rng(seed: int, rows_index: int, cols_index: int, sample: int) -> np.random.Generator:
    """Generator of one sample's random array: a pure function of its keys.

    Arrays depend on ``(seed, size, sample)`` only, so every wire resistance and density at
    one size sees the same random numbers (common random numbers: smoother tables).
    """
    return np.random.default_rng(np.random.SeedSequence(
        seed, spawn_key=(int(rows_index), int(cols_index), int(sample))))


def compute_point(sweep_json: str, index: int) -> dict[str, np.ndarray]:
    """Solve every sample of grid point ``index`` exactly and reduce to table entries.

    A pure function of its arguments (no worker state), so any scheduler gives the same
    bits. Returns plain float64 arrays (statistics over samples).

    Parameters
    ----------
    sweep_json : str
        Canonical sweep JSON (:meth:`Sweep.to_json`).
    index : int
        Flat grid-point index (C order over the grid axes).

    Returns
    -------
    dict of str to ndarray
        ``nf`` (samples,), ``nf_model`` (samples,), ``nf_first_order`` (samples,),
        ``nf_columns`` (N,) mean over samples, ``cell_loss``, ``cell_loss_std``,
        ``current_attenuation``, ``model_loss`` (kept map rows, kept map cols) means.
    """
    from ..api import solve
    from ..spec import Crossbar
    from .sweep import Sweep

    sweep = Sweep.from_dict(__import__("json").loads(sweep_json))
    p = sweep.point(index)
    m, n = p["rows"], p["cols"]
    r = (p["r_row"], p["r_col"], p["r_driver"], p["r_sense"])
    keep_r, keep_c = sweep.map_indices(m), sweep.map_indices(n)
    nf, nf_model, nf_fo, nf_cols = [], [], [], []
    loss_maps, cur_maps, model_maps = [], [], []
    for s in range(sweep.samples):
        rng = point_rng(sweep.seed, p["index"][0], p["index"][1], s)
        uniform = rng.random((m, n))
        v = point_inputs(sweep.inputs, m, rng)
        g = np.where(uniform < p["density"], p["g_on"], p["g_off"])
        xbar = Crossbar(g, r_row=r[0], r_col=r[1], r_driver=r[2], r_sense=r[3])
        sol = solve(xbar, v, backend=sweep.backend)
        nf.append(sol.nf)
        nf_cols.append(sol.nf_columns)
        loss = sol.cell_loss
        with np.errstate(divide="ignore", invalid="ignore"):
            i_ideal = g * v[:, None]
            cur = np.where(i_ideal != 0, 1.0 - sol.cell_currents / np.where(
                i_ideal != 0, i_ideal, 1.0), np.nan)
        mloss = model_loss(g, v, *r)
        nf_model.append(nf_from_loss(g, v, mloss)[0])
        nf_fo.append(nf_from_loss(g, v, first_order_loss(g, v, *r))[0])
        sub = np.ix_(keep_r, keep_c)
        loss_maps.append(loss[sub])
        cur_maps.append(cur[sub])
        model_maps.append(mloss[sub])

    def mean(stack: list[np.ndarray]) -> np.ndarray:
        arr = np.stack(stack)
        count = np.sum(~np.isnan(arr), axis=0)
        total = np.nansum(arr, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    loss_mean = mean(loss_maps)
    loss_sq = mean([x * x for x in loss_maps])
    return {
        "nf": np.asarray(nf, dtype=np.float64),
        "nf_model": np.asarray(nf_model, dtype=np.float64),
        "nf_first_order": np.asarray(nf_fo, dtype=np.float64),
        "nf_columns": mean(nf_cols),
        "cell_loss": loss_mean,
        "cell_loss_std": np.sqrt(np.maximum(loss_sq - loss_mean * loss_mean, 0.0)),
        "current_attenuation": mean(cur_maps),
        "model_loss": mean(model_maps),
    }
