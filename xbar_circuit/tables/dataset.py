"""Assemble a sweep's checkpoints into the labelled table and write it to NetCDF.

:func:`build_dataset` reads every grid point's checkpoint into one
:class:`xarray.Dataset` (dimensions :data:`~.sweep.DIMS`, then ``sample``, ``col`` or
the map axes ``map_row`` / ``map_col``; NaN where a smaller array has no value);
:func:`write_table` writes it atomically with the h5netcdf engine. xarray is imported
only inside these functions.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

import numpy as np

from .._optional import import_optional
from ._errors import TableError
from .checkpoint import point_path, read_point
from .schema import MAP_KEYS, SAMPLE_KEYS
from .sweep import DIMS, Sweep

__all__ = ["UNITS", "build_dataset", "write_table"]

logger = logging.getLogger(__name__)

UNITS = {"rows": "cells", "cols": "cells", "r_row": "ohm", "r_col": "ohm",
         "r_driver": "ohm", "r_sense": "ohm", "g_on": "S", "g_off": "S", "density": "1"}
"""Units of the grid coordinates."""


def build_dataset(sweep: Sweep, partial: str) -> Any:
    """Build the labelled table (an :class:`xarray.Dataset`) from the checkpoints.

    The dataset has no attributes yet; :func:`~.calibration.assemble` adds them.

    Parameters
    ----------
    sweep : Sweep
        The sweep the checkpoints belong to.
    partial : str
        Checkpoint directory.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    TableError
        If a grid point has no checkpoint, a checkpoint is corrupt, or a grid point gave
        an undefined (non-finite) NF.
    MissingDependencyError
        If xarray or h5netcdf is not installed.
    """
    xr = import_optional("xarray", "a lookup table")
    import_optional("h5netcdf", "writing a lookup table to NetCDF")

    shape = sweep.shape
    n_max_r, n_max_c = max(sweep.grid["rows"]), max(sweep.grid["cols"])
    k_r = min(n_max_r, sweep.map_max)
    k_c = min(n_max_c, sweep.map_max)
    s = sweep.samples
    nan = np.nan
    arrays = {key: np.full((*shape, s), nan) for key in SAMPLE_KEYS}
    arrays["nf_columns"] = np.full((*shape, n_max_c), nan)
    arrays.update({key: np.full((*shape, k_r, k_c), nan) for key in MAP_KEYS})
    missing = [i for i in range(sweep.n_points) if not os.path.exists(point_path(partial, i))]
    if missing:
        raise TableError(f"{len(missing)} grid point(s) have no checkpoint in {partial} "
                         f"(first: {missing[:5]})")
    for index in range(sweep.n_points):
        p = sweep.point(index)
        data = read_point(partial, index, sweep)
        at = p["index"]
        for key in SAMPLE_KEYS:
            arrays[key][at] = data[key]
        arrays["nf_columns"][(*at, slice(0, p["cols"]))] = data["nf_columns"]
        mr, mc = data["cell_loss"].shape
        for key in MAP_KEYS:
            arrays[key][(*at, slice(0, mr), slice(0, mc))] = data[key]
    bad = np.argwhere(~np.isfinite(arrays["nf"]).all(axis=-1).reshape(-1))
    if bad.size:
        first = sweep.point(int(bad[0, 0]))
        first.pop("index")
        raise TableError(f"{bad.size} grid point(s) gave an undefined (non-finite) NF, e.g. "
                         f"{first}: no column has a nonzero ideal current; change the sweep")
    map_row_index = np.full((len(sweep.grid["rows"]), k_r), -1, dtype=np.int64)
    for a, m in enumerate(sweep.grid["rows"]):
        idx = sweep.map_indices(m)
        map_row_index[a, : idx.size] = idx
    map_col_index = np.full((len(sweep.grid["cols"]), k_c), -1, dtype=np.int64)
    for a, n in enumerate(sweep.grid["cols"]):
        idx = sweep.map_indices(n)
        map_col_index[a, : idx.size] = idx
    nf = arrays["nf"]
    dims = list(DIMS)
    coords: dict[str, Any] = {
        k: xr.Variable(k, np.asarray(sweep.grid[k], dtype=np.int64 if k in ("rows", "cols")
                                     else np.float64), {"units": UNITS[k]})
        for k in DIMS
    }
    coords["sample"] = np.arange(s, dtype=np.int64)
    coords["col"] = np.arange(n_max_c, dtype=np.int64)
    coords["map_row_index"] = (("rows", "map_row"), map_row_index,
                               {"description": "cell row index of each map row (-1: none)"})
    coords["map_col_index"] = (("cols", "map_col"), map_col_index,
                               {"description": "cell column index of each map column (-1: none)"})
    mapdims = [*dims, "map_row", "map_col"]

    def var(d: list[str], a: np.ndarray, text: str) -> tuple[list[str], np.ndarray, dict]:
        return (d, a, {"description": text, "units": "1"})

    data_vars = {
        "nf_samples": var([*dims, "sample"], nf, "array NF (mean column NF, docs/convention.md "
                          "§2) of each random sample, exact solve"),
        "nf_mean": var(dims, nf.mean(axis=-1), "mean over samples of the array NF"),
        "nf_std": var(dims, nf.std(axis=-1, ddof=1) if s > 1 else np.zeros(shape),
                      "sample standard deviation of the array NF (0 for one sample)"),
        "nf_min": var(dims, nf.min(axis=-1), "smallest array NF over samples"),
        "nf_max": var(dims, nf.max(axis=-1), "largest array NF over samples"),
        "nf_model_samples": var([*dims, "sample"], arrays["nf_model"],
                                "closed-form (cell-wise Pade) NF of the same samples"),
        "nf_first_order_samples": var([*dims, "sample"], arrays["nf_first_order"],
                                      "first-order (linear in r) NF of the same samples"),
        "nf_columns": var([*dims, "col"], arrays["nf_columns"],
                          "column NF versus column position, mean over samples (NaN past N)"),
        "cell_loss": var(mapdims, arrays["cell_loss"], "per-cell loss 1 - V_cell/V_in, mean "
                         "over samples, at cells map_row_index x map_col_index"),
        "cell_loss_std": var(mapdims, arrays["cell_loss_std"],
                             "population standard deviation of the per-cell loss over samples"),
        "current_attenuation": var(mapdims, arrays["current_attenuation"],
                                   "per-cell current attenuation 1 - I_cell/(G V_in), mean "
                                   "over samples (equals cell_loss for linear devices)"),
        "model_loss": var(mapdims, arrays["model_loss"],
                          "closed-form (cell-wise Pade) per-cell loss, mean over samples"),
    }
    logger.debug("assembled the %d grid points of %s", sweep.n_points, partial)
    return xr.Dataset(data_vars=data_vars, coords=coords)


def write_table(dataset: Any, output: str) -> None:
    """Write ``dataset`` to NetCDF (h5netcdf engine) atomically.

    Parameters
    ----------
    dataset : xarray.Dataset
        The table.
    output : str
        Path of the ``.nc`` file; replaced only once the new file is complete.

    Raises
    ------
    TableError
        If no temporary file can be created next to ``output``.
    """
    directory = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".table-", suffix=".nc", dir=directory)
    except OSError as exc:
        raise TableError(f"cannot write {output}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        dataset.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
