"""The layout of a lookup table: its schema tag, per-point fields and attributes.

A table file is an :class:`xarray.Dataset` tagged :data:`SCHEMA` /
:data:`SCHEMA_VERSION`. Every grid point of a sweep yields the fields
:data:`POINT_KEYS` with the shapes :func:`point_shapes` gives (checkpoints hold exactly
these arrays); :func:`table_attributes` writes the attributes recording how the table
was made. :class:`~xbar_circuit.tables.LookupTable` refuses a file whose tag or version
differs.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from typing import Any

import numpy as np

from .._version import __version__
from .sweep import Sweep

__all__ = ["MAP_KEYS", "POINT_KEYS", "SAMPLE_KEYS", "SCHEMA", "SCHEMA_VERSION", "point_shapes",
           "table_attributes"]

SCHEMA = "xbar-circuit/lookup-table"
SCHEMA_VERSION = 1

POINT_KEYS = ("nf", "nf_model", "nf_first_order", "nf_columns", "cell_loss", "cell_loss_std",
              "current_attenuation", "model_loss")
"""Fields computed at each grid point, in checkpoint order."""

MAP_KEYS = ("cell_loss", "cell_loss_std", "current_attenuation", "model_loss")
"""The per-cell fields, sampled at the cells of the sweep's map (``map_max`` a side)."""

SAMPLE_KEYS = ("nf", "nf_model", "nf_first_order")
"""The fields with one value per random sample."""


def point_shapes(sweep: Sweep, index: int) -> dict[str, tuple[int, ...]]:
    """Shape of every checkpoint field of grid point ``index`` of ``sweep``.

    Parameters
    ----------
    sweep : Sweep
        The sweep.
    index : int
        Flat index of the grid point.

    Returns
    -------
    dict of str to tuple of int
        One shape per name of :data:`POINT_KEYS`.
    """
    p = sweep.point(index)
    kept = (sweep.map_indices(p["rows"]).size, sweep.map_indices(p["cols"]).size)
    shapes: dict[str, tuple[int, ...]] = {k: (sweep.samples,) for k in SAMPLE_KEYS}
    shapes["nf_columns"] = (p["cols"],)
    for key in MAP_KEYS:
        shapes[key] = kept
    return shapes


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def table_attributes(sweep: Sweep, check: dict[str, Any]) -> dict[str, Any]:
    """Attributes recording how a table was made (all plain strings and numbers).

    Parameters
    ----------
    sweep : Sweep
        The sweep the table was computed from.
    check : dict
        Outcome of the ngspice cross-check, stored as strict JSON (non-finite numbers
        become null).

    Returns
    -------
    dict of str to str or int
        Schema tag and version, package version, backend and its tolerance, the metric,
        the sweep (JSON and digest), creation time, host and the ngspice check.
    """
    from ..backends.nodal import DEFAULT_RTOL

    solver = {"nodal": f"compiled line-preconditioned CG, relative residual <= {DEFAULT_RTOL:g}"
                       " (column currents within ~1e-12 of a direct solve)",
              "reference": "SuperLU direct solve with iterative refinement (machine precision)",
              "ngspice": "ngspice .op defaults (reltol 1e-3, abstol 1e-12 A)"}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "package": "xbar-circuit",
        "package_version": __version__,
        "backend": sweep.backend,
        "solver_tolerance": solver.get(sweep.backend, "unknown"),
        "metric": "nf = mean over columns with I_ideal > 0 of (I_ideal - I)/I_ideal",
        "sweep": sweep.to_json(),
        "sweep_digest": sweep.digest,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": f"{platform.node()} ({os.cpu_count()} cores, {platform.platform()})",
        "ngspice_check": json.dumps(_json_safe(check), sort_keys=True, allow_nan=False),
    }
