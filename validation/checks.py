"""Simulator-independent checks: closed forms and physical identities (docs/convention.md §3).

Each function returns a dimensionless error to compare with
:data:`validation.tolerances.TOLERANCES`; none of them calls ngspice.
"""

from __future__ import annotations

import numpy as np

from xbar_circuit import Crossbar, CrossbarSolution

__all__ = [
    "line_ratio",
    "kcl_residuals",
    "kcl_error",
    "power_balance_error",
    "word_line_case",
    "bit_line_case",
]


def line_ratio(n_cells: int, r: float, g: float) -> np.ndarray:
    """Closed-form ``V_k / V_in``, k = 1..n_cells, along a uniformly loaded line.

    One word line: N cells of conductance ``g`` (S) to an ideal ground, segments of
    ``r`` ohms, ideal driver, one segment before the first cell:
    ``V_k = V_in cosh((N + 1/2 - k) θ) / cosh((N + 1/2) θ)`` with ``cosh θ = 1 + r g/2``,
    evaluated as ``θ = 2 asinh(sqrt(r g)/2)`` to avoid cancellation in ``1 + r g/2``.

    Examples
    --------
    >>> line_ratio(1, 1.0, 1.0)  # divider: 1 ohm in series with 1 S -> 1/2
    array([0.5])
    """
    theta = 2.0 * np.arcsinh(np.sqrt(r * g) / 2.0)
    k = np.arange(1, n_cells + 1)
    return np.cosh((n_cells + 0.5 - k) * theta) / np.cosh((n_cells + 0.5) * theta)


def word_line_case(n_cells: int, r: float, g: float, v_in: float = 0.3):
    """A 1 x N word-line crossbar, its input, and the closed-form cell voltages (V)."""
    xbar = Crossbar(np.full((1, n_cells), g), r_row=r, r_col=0.0)
    return xbar, np.array([v_in]), v_in * line_ratio(n_cells, r, g)[None, :]


def bit_line_case(n_cells: int, r: float, g: float, v_in: float = 0.2):
    """An M x 1 bit-line crossbar (ideal drivers), its inputs, and the cell voltages (V).

    The cell nearest the sense amplifier (row M-1) is k = 1 of the closed form.
    """
    xbar = Crossbar(np.full((n_cells, 1), g), r_row=0.0, r_col=r)
    return (xbar, np.full(n_cells, v_in),
            v_in * line_ratio(n_cells, r, g)[::-1][:, None])


def kcl_residuals(solution: CrossbarSolution) -> tuple[np.ndarray, np.ndarray]:
    """Net current (A) leaving every row node and every column node.

    Computed from the node voltages and the spec alone (not from the solver's
    currents). Where a wire resistance is zero its nodes are one node: the residual
    is then that merged node's (one value per row or column, broadcast).

    Returns
    -------
    row_residual, column_residual : ndarray, shape (…, M, N)
    """
    xbar = solution.crossbar
    vr, vc = solution.row_voltages, solution.column_voltages
    v_in = np.asarray(solution.v_in)
    cell = xbar.conductance * (vr - vc)
    r_first = xbar.r_row + xbar.r_driver
    r_last = xbar.r_col + xbar.r_sense
    # Current from each row's source into r(i, 0) and from c(M-1, j) into the ground.
    if r_first > 0:
        i_source = (v_in - vr[..., :, 0]) / r_first
    else:
        i_source = cell.sum(axis=-1)  # an ideal source supplies whatever is drawn
    if r_last > 0:
        i_sink = vc[..., -1, :] / r_last
    else:
        i_sink = cell.sum(axis=-2)
    if xbar.r_row > 0:
        out_right = np.zeros_like(vr)
        out_right[..., :-1] = (vr[..., :-1] - vr[..., 1:]) / xbar.r_row
        into = np.zeros_like(vr)
        into[..., 1:] = out_right[..., :-1]
        into[..., 0] = i_source
        row_res = cell + out_right - into
    else:
        row_res = np.broadcast_to((cell.sum(axis=-1) - i_source)[..., None], vr.shape)
    if xbar.r_col > 0:
        out_down = np.zeros_like(vc)
        out_down[..., :-1, :] = (vc[..., :-1, :] - vc[..., 1:, :]) / xbar.r_col
        out_down[..., -1, :] = i_sink
        from_above = np.zeros_like(vc)
        from_above[..., 1:, :] = out_down[..., :-1, :]
        col_res = out_down - from_above - cell
    else:
        col_res = np.broadcast_to((i_sink - cell.sum(axis=-2))[..., None, :], vc.shape)
    return row_res, col_res


def kcl_error(solution: CrossbarSolution) -> float:
    """Largest KCL residual divided by the total current scale Σ|G·V_in| (dimensionless)."""
    row_res, col_res = kcl_residuals(solution)
    scale = float(np.abs(solution.crossbar.conductance
                         * np.asarray(solution.v_in)[..., :, None]).sum())
    if scale == 0.0:
        return 0.0
    return float(max(np.abs(row_res).max(), np.abs(col_res).max()) / scale)


def power_balance_error(solution: CrossbarSolution) -> float:
    """``|P_delivered - P_dissipated| / P_dissipated`` (0 when nothing dissipates)."""
    delivered = np.asarray(solution.power_delivered, dtype=float)
    dissipated = np.asarray(solution.power_dissipated, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(dissipated > 0, np.abs(delivered - dissipated) / dissipated, 0.0)
    return float(np.max(err))
