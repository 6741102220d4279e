"""Figures of a lookup table (matplotlib, PNG)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._validate import check_real, short_repr
from ._errors import TableError
from .sweep import DIMS

__all__ = ["plot_heatmap", "plot_nf_vs_size", "plot_table"]


def check_fixed(fixed: Any) -> dict[str, float]:
    """Validate grid values given to the plots: a mapping of axis name -> number.

    Raises
    ------
    TableError
        For a non-mapping, an unknown axis name (the message lists the axes) or a value
        that is not a finite number.
    """
    if fixed is None:
        return {}
    if not isinstance(fixed, dict):
        raise TableError(f"grid values must be a mapping of axis name to value (e.g. "
                         f'{{"density": 0.5}}), got {short_repr(fixed)}')
    unknown = [k for k in fixed if k not in DIMS]
    if unknown:
        raise TableError(f"unknown grid axis(es) {short_repr(sorted(map(str, unknown)))}; "
                         f"the axes are {', '.join(DIMS)}")
    return {k: check_real(k, v, error=TableError) for k, v in fixed.items()}


def snap_fixed(table: Any, fixed: Any) -> tuple[dict[str, int], list[str]]:
    """Index along every axis, and a note for each given value that is not on the grid.

    Each given value picks its nearest grid value; other axes take their middle value.

    Returns
    -------
    indices : dict of str to int
        Grid index per axis of :data:`DIMS`.
    notes : list of str
        ``"r_row=1.5 -> 1 (nearest grid value)"`` for every value that was snapped.
    """
    values = check_fixed(fixed)
    out, notes = {}, []
    for k in DIMS:
        axis = table._axes[k]
        if k in values:
            out[k] = int(np.argmin(np.abs(axis - values[k])))
            used = float(axis[out[k]])
            if used != values[k]:
                notes.append(f"{k}={values[k]:g} -> {used:g} (nearest grid value)")
        else:
            out[k] = axis.size // 2
    return out, notes


def _pick(table: Any, fixed: dict[str, float] | None) -> dict[str, int]:
    """Index along every axis: the given value's nearest grid value, else the middle."""
    return snap_fixed(table, fixed)[0]


def plot_nf_vs_size(table: Any, path: str | os.PathLike[str], *, wire: str = "r_row",
                    fixed: dict[str, float] | None = None) -> str:
    """Plot mean NF (error bars: sample std) versus array size, one curve per wire value.

    Square sizes (M = N) are used when the table has them, else N at the middle M.

    Parameters
    ----------
    table : LookupTable
    path : path
        PNG file to write.
    wire : {"r_row", "r_col"}
        Axis giving one curve per value; with ``"r_row"`` and a table whose ``r_col``
        axis equals its ``r_row`` axis, both are varied together (r_row = r_col).
    fixed : dict, optional
        Values of the other axes (nearest grid value); default the middle of each axis.

    Returns
    -------
    str
        The path written.
    """
    from .._optional import import_optional

    matplotlib = import_optional("matplotlib", "plotting a lookup table")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = table.dataset
    idx = _pick(table, fixed)
    rows, cols = table._axes["rows"], table._axes["cols"]
    common = sorted(set(rows.tolist()) & set(cols.tolist()))
    tied = wire == "r_row" and np.array_equal(table._axes["r_row"], table._axes["r_col"])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for w, value in enumerate(table._axes[wire]):
        sel = {k: idx[k] for k in DIMS if k not in ("rows", "cols")}
        sel[wire] = w
        if tied:
            sel["r_col"] = w
        if len(common) >= 2:
            xs = np.array(common)
            pts = [dict(sel, rows=int(np.flatnonzero(rows == s)[0]),
                        cols=int(np.flatnonzero(cols == s)[0])) for s in common]
            xlabel = "array size N (N x N)"
        else:
            xs = cols
            pts = [dict(sel, rows=idx["rows"], cols=c) for c in range(cols.size)]
            xlabel = f"columns N (M = {int(rows[idx['rows']])})"
        mean = [float(ds["nf_mean"].isel(p)) for p in pts]
        std = [float(ds["nf_std"].isel(p)) for p in pts]
        label = f"{wire} = {value:g} ohm" + (" (= r_col)" if tied else "")
        ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("array NF (mean column NF)")
    others = ", ".join(f"{k}={table._axes[k][idx[k]]:g}" for k in
                       ("r_driver", "r_sense", "g_on", "g_off", "density")
                       if k != wire)
    ax.set_title(f"NF vs size ({others})", fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.fspath(path)


def plot_heatmap(table: Any, path: str | os.PathLike[str], *, variable: str = "cell_loss",
                 fixed: dict[str, float] | None = None) -> str:
    """Heatmap of a per-cell map (``cell_loss`` or ``current_attenuation``) at one point.

    Defaults to the largest array and the largest wire resistances of the table.

    Returns
    -------
    str
        The path written.
    """
    from .._optional import import_optional

    matplotlib = import_optional("matplotlib", "plotting a lookup table")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = table._axes
    fixed = dict(fixed or {})
    for k in ("rows", "cols", "r_row", "r_col"):
        fixed.setdefault(k, float(axes[k][-1]))
    idx = _pick(table, fixed)
    data = table.dataset[variable].isel(idx).values
    r_idx = table._map_rows[idx["rows"]]
    c_idx = table._map_cols[idx["cols"]]
    data = data[: int((r_idx >= 0).sum()), : int((c_idx >= 0).sum())]
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    m, n = int(axes["rows"][idx["rows"]]), int(axes["cols"][idx["cols"]])
    im = ax.imshow(data, origin="upper", aspect="auto", cmap="magma",
                   extent=(-0.5, n - 0.5, m - 0.5, -0.5))
    fig.colorbar(im, ax=ax, label="1 - V_cell/V_in" if variable == "cell_loss"
                 else "1 - I_cell/(G V_in)")
    ax.set_xlabel("column j (sense amps at the bottom)")
    ax.set_ylabel("row i (drivers on the left)")
    title = ", ".join(f"{k}={axes[k][idx[k]]:g}" for k in DIMS)
    ax.set_title(f"{variable}, mean over samples\n{title}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.fspath(path)


def plot_table(table: Any, outdir: str | os.PathLike[str], prefix: str = "table") -> list[str]:
    """Write the standard figures of a table into ``outdir``; return their paths."""
    os.makedirs(outdir, exist_ok=True)
    paths = [plot_nf_vs_size(table, os.path.join(outdir, f"{prefix}_nf_vs_size.png")),
             plot_heatmap(table, os.path.join(outdir, f"{prefix}_cell_loss.png"))]
    if table._axes["r_col"].size > 1 and not np.array_equal(
            table._axes["r_row"], table._axes["r_col"]):
        paths.append(plot_nf_vs_size(table, os.path.join(outdir, f"{prefix}_nf_vs_size_rcol.png"),
                                     wire="r_col"))
    return paths
