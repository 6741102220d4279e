"""Load calibration tables and predict nonideality without solving circuits.

Prediction (``LookupTable.predict_nf`` / ``predict_attenuation``) has two parts:

1. A closed-form model of the given array and inputs, the cell-wise Padé form of the
   Neumann series of the wire network (:func:`~xbar_circuit.tables.physics.model_loss`).
   It carries the exact first- and second-order dependence on the ON-cell pattern, the
   inputs and every resistance, in O(M·N).
2. A correction calibrated by exact solves: the table's ratio exact/model, interpolated
   multi-linearly over the grid (log axes for sizes, resistances and conductances that
   are all positive, linear otherwise) and, for maps, bilinearly over normalized cell
   position. Circuit scaling is exact for linear arrays (multiplying every conductance
   by c and every resistance by 1/c leaves all voltages unchanged), so a query's
   ``g_on`` outside the table is first brought into range by that scaling.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from .._memory import check_memory
from .._validate import as_real_array, load_json, short_repr
from ..spec import Crossbar
from ._errors import SweepError, TableError
from .calibration import SCHEMA, SCHEMA_VERSION
from .physics import model_loss, nf_from_loss
from .sweep import DIMS, Sweep

__all__ = ["LookupTable", "OutOfRangeWarning"]

_REQUIRED_VARS = {
    "nf_samples": (*DIMS, "sample"), "nf_mean": DIMS, "nf_std": DIMS,
    "nf_model_samples": (*DIMS, "sample"), "nf_columns": (*DIMS, "col"),
    "cell_loss": (*DIMS, "map_row", "map_col"), "current_attenuation":
    (*DIMS, "map_row", "map_col"), "model_loss": (*DIMS, "map_row", "map_col"),
}


class OutOfRangeWarning(UserWarning):
    """A query lies outside the table's grid and was clipped to its edge."""


OUT_OF_RANGE = ("clip", "error", "ignore")
METHODS = ("scalar", "map", "model")


def _check_out_of_range(out_of_range: Any) -> str:
    if not isinstance(out_of_range, str) or out_of_range not in OUT_OF_RANGE:
        raise TableError(f"out_of_range must be one of {', '.join(map(repr, OUT_OF_RANGE))}, "
                         f"got {out_of_range!r}")
    return out_of_range


def _finite(name: str, value: Any) -> float:
    """``value`` as a finite float, else TableError naming the parameter."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.iscomplexobj(value):
        raise TableError(f"parameter {name!r} must be a finite number, got "
                         f"{short_repr(value)}")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise TableError(f"parameter {name!r} must be a finite number, got "
                         f"{short_repr(value)}") from None
    if not np.isfinite(out):
        raise TableError(f"parameter {name!r} must be a finite number, got {value!r}")
    return out


def _unsupported(crossbar: Crossbar) -> list[str]:
    """Features of ``crossbar`` outside the default linear circuit the tables model."""
    from ..devices import Linear

    out = []
    if type(crossbar.device) is not Linear:
        out.append(f"device={crossbar.device!r} (only the linear cell model is calibrated)")
    if crossbar.driver_side != "left":
        out.append(f"driver_side={crossbar.driver_side!r} (only 'left')")
    if crossbar.sense_side != "bottom":
        out.append(f"sense_side={crossbar.sense_side!r} (only 'bottom')")
    if crossbar.tia is not None:
        out.append(f"tia={crossbar.tia!r} (only ideal virtual grounds)")
    if crossbar.sense_load is not None:
        out.append(f"sense_load={crossbar.sense_load!r} (only ideal virtual grounds)")
    if not isinstance(crossbar.r_row, float):
        out.append("per-segment r_row array (only a scalar row-wire resistance)")
    if not isinstance(crossbar.r_col, float):
        out.append("per-segment r_col array (only a scalar column-wire resistance)")
    return out


class LookupTable:
    """A calibrated nonideality lookup table (read with :meth:`load`).

    Attributes
    ----------
    sweep : Sweep
        The sweep the table was computed from.
    attrs : dict
        Provenance attributes (package version, backend, tolerance, date, ngspice check).
    dataset : xarray.Dataset
        The full labelled table, in memory.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from xbar_circuit import Crossbar
    >>> from xbar_circuit.tables import Sweep, calibrate, LookupTable
    >>> sweep = Sweep.from_dict({"grid": {"rows": [8, 16], "cols": [8, 16],
    ...     "r_row": [1.0, 4.0], "r_col": [1.0, 4.0], "g_on": 1e-4, "g_off": 1e-6,
    ...     "density": [0.3, 0.7]}, "samples": 2, "seed": 1})
    >>> path = os.path.join(tempfile.mkdtemp(), "t.nc")
    >>> _ = calibrate(sweep, path, workers=0, progress=False, ngspice_check=False)
    >>> table = LookupTable.load(path)
    >>> xbar = Crossbar.random(12, 12, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4,
    ...                        density=0.5, seed=7)
    >>> 0.0 < table.predict_nf(xbar) < 0.1
    True
    >>> table.predict_attenuation(xbar).shape
    (12, 12)
    """

    def __init__(self, dataset: Any, source: str = "<memory>") -> None:
        self.source = source
        self.dataset = dataset
        self.attrs = dict(dataset.attrs)
        _check_schema(dataset, source)
        self.sweep = _attr_sweep(self.attrs.get("sweep"), source)
        if tuple(dataset.sizes[k] for k in DIMS) != self.sweep.shape:
            raise TableError(f"{source}: table dimensions do not match its sweep description")
        _check_values(dataset, self.sweep, source)
        self._axes = {k: np.asarray(dataset[k].values, dtype=np.float64) for k in DIMS}
        for k, values in self._axes.items():
            if values.size > 1 and not np.all(np.diff(values) > 0):
                raise TableError(f"{source}: coordinate {k!r} is not strictly increasing")
        self._log = {k: bool(np.all(v > 0)) for k, v in self._axes.items()}
        nf_mean = np.asarray(dataset["nf_mean"].values, dtype=np.float64)
        model = np.asarray(dataset["nf_model_samples"].values, dtype=np.float64).mean(axis=-1)
        if not np.all(np.isfinite(nf_mean)):
            raise TableError(f"{source}: nf_mean holds non-finite values")
        with np.errstate(divide="ignore", invalid="ignore"):
            self._kappa = np.where(model > 0, nf_mean / np.where(model > 0, model, 1.0), 1.0)
        loss = np.asarray(dataset["cell_loss"].values, dtype=np.float64)
        mloss = np.asarray(dataset["model_loss"].values, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = loss / mloss
        self._ratio_map = np.where(np.isfinite(ratio) & (mloss > 0), ratio, 1.0)
        self._map_rows = np.asarray(dataset["map_row_index"].values, dtype=np.int64)
        self._map_cols = np.asarray(dataset["map_col_index"].values, dtype=np.int64)

    # --------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LookupTable:
        """Read and validate a table written by :func:`~xbar_circuit.tables.calibrate`.

        The file is NetCDF-4 (HDF5) read with the h5netcdf engine: plain numbers and
        strings, nothing is ever unpickled.

        Raises
        ------
        TableError
            If the file does not exist, is not NetCDF/HDF5 (corrupt or foreign), lacks the
            schema attributes, has another schema or version, or misses variables.
        """
        try:
            path = os.fspath(path)
        except TypeError:
            raise TableError(f"a lookup table path must be a string or path, got "
                             f"{short_repr(path)}") from None
        if not isinstance(path, str) or not os.path.isfile(path):
            raise TableError(f"no lookup table at {short_repr(path)}")
        from .._optional import import_optional

        xr = import_optional("xarray", "LookupTable.load")
        import_optional("h5netcdf", "LookupTable.load")
        expected = _check_file(path)
        check_memory(2 * expected, f"loading the lookup table {path}")
        try:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                ds = ds.load()
        except Exception as exc:  # h5py/h5netcdf raise several types for non-HDF5 data
            raise TableError(f"{path}: not a readable NetCDF-4 lookup table "
                             f"({type(exc).__name__}: {short_repr(str(exc))})") from None
        return cls(ds, source=path)

    # ------------------------------------------------------------- interpolation
    def _brackets(self, params: dict[str, float], out_of_range: str
                  ) -> list[tuple[int, int, float]]:
        """Per grid axis: (lower index, upper index, weight of upper)."""
        _check_out_of_range(out_of_range)
        out = []
        for k in DIMS:
            axis = self._axes[k]
            q = float(params[k])
            lo_v, hi_v = axis[0], axis[-1]
            if q < lo_v * (1 - 1e-12) - 1e-300 or q > hi_v * (1 + 1e-12) + 1e-300:
                message = (f"{k}={q:g} is outside the table's range [{lo_v:g}, {hi_v:g}] "
                           f"({self.source})")
                if out_of_range == "error":
                    raise TableError(message)
                if out_of_range == "clip":
                    warnings.warn(message + "; clipped to the edge", OutOfRangeWarning,
                                  stacklevel=4)
                q = min(max(q, lo_v), hi_v)
            if axis.size == 1:
                out.append((0, 0, 0.0))
                continue
            hi = int(np.clip(np.searchsorted(axis, q, side="right"), 1, axis.size - 1))
            lo = hi - 1
            if self._log[k]:
                x, a, b = np.log(q), np.log(axis[lo]), np.log(axis[hi])
            else:
                x, a, b = q, axis[lo], axis[hi]
            w = float(np.clip((x - a) / (b - a), 0.0, 1.0))
            out.append((lo, hi, w))
        return out

    @staticmethod
    def _corners(brackets: list[tuple[int, int, float]]) -> list[tuple[tuple[int, ...], float]]:
        corners: list[tuple[tuple[int, ...], float]] = [((), 1.0)]
        for lo, hi, w in brackets:
            nxt = []
            for idx, weight in corners:
                if w < 1.0:
                    nxt.append(((*idx, lo), weight * (1.0 - w)))
                if w > 0.0:
                    nxt.append(((*idx, hi), weight * w))
            corners = nxt
        return corners

    def interpolate(self, variable: str, *, out_of_range: str = "clip", **params: float
                    ) -> float | np.ndarray:
        """Multi-linear interpolation of a table variable at off-grid parameters.

        Parameters
        ----------
        variable : str
            A data variable with the grid dimensions first (e.g. ``"nf_mean"``,
            ``"nf_std"``).
        out_of_range : {"clip", "error", "ignore"}
            What to do with a parameter outside the grid: clip with an
            :class:`OutOfRangeWarning`, raise :class:`TableError`, or clip silently.
        **params : float
            Every grid axis (``rows``, ``cols``, ``r_row``, ... in their SI units); axes
            with one value may be omitted.

        Returns
        -------
        float or ndarray
            The interpolated value (trailing dimensions kept).
        """
        _check_out_of_range(out_of_range)
        known = sorted(k for k, v in self.dataset.data_vars.items()
                       if tuple(v.dims[: len(DIMS)]) == DIMS)
        if not isinstance(variable, str) or variable not in known:
            raise TableError(f"unknown table variable {variable!r}; interpolable variables: "
                             f"{', '.join(known)}")
        full = self._params(params)
        values = np.asarray(self.dataset[variable].values, dtype=np.float64)
        total = 0.0
        for idx, w in self._corners(self._brackets(full, out_of_range)):
            total = total + w * values[idx]
        return float(total) if np.ndim(total) == 0 else np.asarray(total)

    def _params(self, params: dict[str, float]) -> dict[str, float]:
        unknown = set(params) - set(DIMS)
        if unknown:
            raise TableError(f"unknown table parameter(s): {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(DIMS)}")
        full = {}
        for k in DIMS:
            if k in params:
                full[k] = _finite(k, params[k])
            elif self._axes[k].size == 1:
                full[k] = float(self._axes[k][0])
            else:
                raise TableError(f"parameter {k!r} is needed: the table has "
                                 f"{self._axes[k].size} values of it")
        if full["g_on"] < full["g_off"]:
            raise TableError(f"g_on ({full['g_on']:g} S) must not be below g_off "
                             f"({full['g_off']:g} S)")
        return full

    @staticmethod
    def _check_crossbar(crossbar: Any) -> Crossbar:
        """TableError unless ``crossbar`` is a Crossbar of the default circuit."""
        if not isinstance(crossbar, Crossbar):
            raise TableError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
        if not crossbar.is_default_topology:
            raise TableError("lookup tables are calibrated for the default linear circuit "
                             "only; unsupported: " + "; ".join(_unsupported(crossbar)))
        return crossbar

    # ------------------------------------------------------------- prediction
    def crossbar_params(self, crossbar: Crossbar, *, g_on: float | None = None,
                        g_off: float | None = None) -> dict[str, float]:
        """Table coordinates of a crossbar, after exact circuit scaling.

        ``g_on``/``g_off`` default to the largest/smallest conductance; the density is
        ``mean((G - g_off) / (g_on - g_off))`` (the ON fraction of a binary array).
        The scaling ``G -> cG``, ``r -> r/c`` (voltages unchanged) brings ``g_on`` into
        the table's range.

        Returns
        -------
        dict
            ``rows``, ``cols``, ``r_row``, ``r_col``, ``r_driver``, ``r_sense`` (ohm),
            ``g_on``, ``g_off`` (S), ``density`` and ``scale`` (the factor c).
        """
        self._check_crossbar(crossbar)
        g = crossbar.conductance
        hi = float(g.max()) if g_on is None else _finite("g_on", g_on)
        lo = float(g.min()) if g_off is None else _finite("g_off", g_off)
        if hi <= 0:
            raise TableError("the crossbar has no conducting cell (g_on = 0)")
        if lo < 0:
            raise TableError(f"g_off must be >= 0 S, got {lo:g}")
        if (g_on is not None or g_off is not None) and hi < lo:
            raise TableError(f"g_on ({hi:g} S) must not be below g_off ({lo:g} S)")
        if hi > lo:
            density = float(np.clip(np.mean((g - lo) / (hi - lo)), 0.0, 1.0))
        else:
            density = 1.0
        c = float(np.clip(hi, self._axes["g_on"][0], self._axes["g_on"][-1])) / hi
        if hi <= lo:  # uniform array: any g_off of the table will do
            lo = float(self._axes["g_off"][0]) / c
        return {"rows": crossbar.n_rows, "cols": crossbar.n_cols,
                "r_row": float(crossbar.r_row) / c, "r_col": float(crossbar.r_col) / c,
                "r_driver": crossbar.r_driver / c, "r_sense": crossbar.r_sense / c,
                "g_on": hi * c, "g_off": lo * c, "density": density, "scale": c}

    def _inputs(self, crossbar: Crossbar, v_in: Any) -> np.ndarray:
        self._check_crossbar(crossbar)
        if v_in is None:
            return np.full(crossbar.n_rows, float(self.sweep.inputs["v_read"]))
        v = as_real_array("v_in", v_in, error=TableError, unit="V")
        if v.shape != (crossbar.n_rows,):
            raise TableError(f"v_in must have shape ({crossbar.n_rows},), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise TableError("v_in must be finite")
        return v

    def _ratio_map_at(self, params: dict[str, float], m: int, n: int, out_of_range: str
                      ) -> np.ndarray:
        """Interpolated exact/model loss ratio resampled onto an (m, n) array."""
        by_size: dict[tuple[int, int], np.ndarray] = {}
        for idx, w in self._corners(self._brackets(params, out_of_range)):
            key = (idx[0], idx[1])
            by_size[key] = by_size.get(key, 0.0) + w * self._ratio_map[idx]
        u_rows = np.linspace(0.0, 1.0, m) if m > 1 else np.zeros(1)
        u_cols = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        out = np.zeros((m, n))
        for (a, b), ratio in by_size.items():
            rows = self._map_rows[a][self._map_rows[a] >= 0]
            cols = self._map_cols[b][self._map_cols[b] >= 0]
            ratio = ratio[: rows.size, : cols.size]
            pr = rows / max(int(self._axes["rows"][a]) - 1, 1)
            pc = cols / max(int(self._axes["cols"][b]) - 1, 1)
            along_cols = np.array([np.interp(u_cols, pc, line) for line in ratio])
            out += np.array([np.interp(u_rows, pr, along_cols[:, j])
                             for j in range(n)]).T
        return out

    def predict_attenuation(self, crossbar: Crossbar, v_in: Any = None, *,
                            out_of_range: str = "clip", g_on: float | None = None,
                            g_off: float | None = None) -> np.ndarray:
        """Predict the per-cell loss map ``1 - V_cell/V_in`` without solving the circuit.

        Parameters
        ----------
        crossbar : Crossbar
            The array (its conductance pattern and resistances are used as they are).
        v_in : array_like, shape (M,), optional
            Input voltages in volts; default: every row at the sweep's ``v_read``.
        out_of_range : {"clip", "error", "ignore"}
            Handling of parameters outside the table (see :meth:`interpolate`).
        g_on, g_off : float, optional
            ON/OFF conductances in siemens (default: the array's max/min).

        Returns
        -------
        ndarray, shape (M, N)
            Dimensionless loss; NaN on rows with V_in = 0.
        """
        _check_out_of_range(out_of_range)
        v = self._inputs(crossbar, v_in)
        params = self.crossbar_params(crossbar, g_on=g_on, g_off=g_off)
        base = model_loss(crossbar.conductance, v, float(crossbar.r_row),
                          float(crossbar.r_col), crossbar.r_driver, crossbar.r_sense)
        ratio = self._ratio_map_at(params, crossbar.n_rows, crossbar.n_cols, out_of_range)
        return base * ratio

    def predict_nf(self, crossbar: Crossbar, v_in: Any = None, *, method: str = "scalar",
                   out_of_range: str = "clip", g_on: float | None = None,
                   g_off: float | None = None) -> float:
        """Predict the array NF (docs/convention.md §2: mean column NF) without solving the circuit.

        Parameters
        ----------
        crossbar : Crossbar
            The array (its conductance pattern and resistances are used as they are).
        v_in : array_like, shape (M,), optional
            Input voltages in volts; default: every row at the sweep's ``v_read``.
        method : {"scalar", "map", "model"}
            ``"scalar"``: closed-form NF of this pattern times the table's interpolated
            exact/model NF ratio (the measured best, see docs/calibration.md); ``"map"``:
            NF implied by :meth:`predict_attenuation`; ``"model"``: the closed form alone
            (no table).
        out_of_range : {"clip", "error", "ignore"}
            Handling of parameters outside the table (see :meth:`interpolate`).
        g_on, g_off : float, optional
            ON/OFF conductances in siemens (default: the array's max/min).

        Returns
        -------
        float
            Predicted NF (dimensionless); NaN if no column has I_ideal > 0.
        """
        if not isinstance(method, str) or method not in METHODS:
            raise TableError(f"method must be 'scalar', 'map' or 'model', got {method!r}")
        _check_out_of_range(out_of_range)
        v = self._inputs(crossbar, v_in)
        g = crossbar.conductance
        if method == "map":
            loss = self.predict_attenuation(crossbar, v, out_of_range=out_of_range, g_on=g_on,
                                            g_off=g_off)
            return nf_from_loss(g, v, loss)[0]
        loss = model_loss(g, v, float(crossbar.r_row), float(crossbar.r_col),
                          crossbar.r_driver, crossbar.r_sense)
        nf = nf_from_loss(g, v, loss)[0]
        if method == "model":
            return nf
        params = self.crossbar_params(crossbar, g_on=g_on, g_off=g_off)
        kappa = sum(w * self._kappa[idx]
                    for idx, w in self._corners(self._brackets(params, out_of_range)))
        return float(nf * kappa)

    def __repr__(self) -> str:
        axes = ", ".join(f"{k}[{v.size}]" for k, v in self._axes.items() if v.size > 1)
        return (f"<LookupTable {self.sweep.name!r}: {self.sweep.n_points} points ({axes}), "
                f"backend={self.attrs.get('backend')!r}, from {self.source}>")


def _scalar(value: Any) -> Any:
    """A plain Python value from an attribute as h5py or xarray return it."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return value


def _check_schema_attrs(attrs: Any, source: str) -> None:
    schema = _scalar(attrs.get("schema"))
    if schema != SCHEMA:
        raise TableError(f"{source}: not an xbar-circuit lookup table (attribute 'schema' is "
                         f"{short_repr(schema)}, expected {SCHEMA!r})")
    raw = _scalar(attrs.get("schema_version"))
    version = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, float) and raw.is_integer():
        version = int(raw)
    if version != SCHEMA_VERSION:
        raise TableError(f"{source}: unsupported lookup-table schema version "
                         f"{short_repr(raw)} (this xbar-circuit reads "
                         f"version {SCHEMA_VERSION})")


def _check_schema(ds: Any, source: str) -> None:
    attrs = ds.attrs
    _check_schema_attrs(attrs, source)
    for name, dims in _REQUIRED_VARS.items():
        if name not in ds.variables:
            raise TableError(f"{source}: lookup table lacks variable {name!r}")
        if tuple(ds[name].dims) != tuple(dims):
            raise TableError(f"{source}: variable {name!r} has dimensions "
                             f"{tuple(ds[name].dims)}, expected {tuple(dims)}")
    for name in ("map_row_index", "map_col_index", "sweep"):
        if name not in ds.variables and name not in attrs:
            raise TableError(f"{source}: lookup table lacks {name!r}")


_MAX_ATTRIBUTE_BYTES = 1 << 20
_MAX_FOREIGN_BYTES = 1 << 20
_OPTIONAL_VARS = ("nf_min", "nf_max", "nf_first_order_samples", "cell_loss_std")
_FINITE_VARS = ("nf_samples", "nf_mean", "nf_std", "nf_model_samples", "nf_min", "nf_max",
                "nf_first_order_samples")


def _attr_sweep(raw: Any, source: str) -> Sweep:
    """The sweep recorded in a table's ``sweep`` attribute; TableError if it is invalid."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TableError(f"{source}: the table's 'sweep' attribute is not UTF-8 "
                             "text") from None
    if not isinstance(raw, str):
        raise TableError(f"{source}: lookup table lacks a 'sweep' text attribute")
    try:
        return Sweep.from_dict(load_json(raw, "the 'sweep' attribute", error=TableError))
    except (SweepError, TableError) as exc:
        raise TableError(f"{source}: the table's 'sweep' attribute is invalid: {exc}") from None


def expected_layout(sweep: Sweep) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape and dtype kinds (NumPy ``dtype.kind`` letters) of every variable a table of
    ``sweep`` holds, as :func:`~xbar_circuit.tables.calibration.assemble` writes them."""
    shape = sweep.shape
    samples = sweep.samples
    n_cols = max(sweep.grid["cols"])
    k_r = min(max(sweep.grid["rows"]), sweep.map_max)
    k_c = min(n_cols, sweep.map_max)
    layout: dict[str, tuple[tuple[int, ...], str]] = {}
    for name in ("nf_samples", "nf_model_samples", "nf_first_order_samples"):
        layout[name] = ((*shape, samples), "f")
    for name in ("nf_mean", "nf_std", "nf_min", "nf_max"):
        layout[name] = (shape, "f")
    layout["nf_columns"] = ((*shape, n_cols), "f")
    for name in ("cell_loss", "cell_loss_std", "current_attenuation", "model_loss"):
        layout[name] = ((*shape, k_r, k_c), "f")
    for name in DIMS:
        layout[name] = ((len(sweep.grid[name]),), "iu" if name in ("rows", "cols") else "f")
    layout["sample"] = ((samples,), "iu")
    layout["col"] = ((n_cols,), "iu")
    layout["map_row_index"] = ((len(sweep.grid["rows"]), k_r), "iu")
    layout["map_col_index"] = ((len(sweep.grid["cols"]), k_c), "iu")
    return layout


def _check_file(path: str) -> int:
    """Check a table file's schema and declared sizes from its metadata alone.

    Opens the HDF5 file with h5py and reads only attributes and dataset headers, so a
    small file declaring huge variables is refused before any data is read.

    Returns
    -------
    int
        Bytes of the variables the table's sweep implies (what loading allocates).
    """
    from .._optional import import_optional

    h5py = import_optional("h5py", "LookupTable.load")
    try:
        handle = h5py.File(path, "r")
    except Exception as exc:  # OSError for non-HDF5 data, others for damaged files
        raise TableError(f"{path}: not a readable NetCDF-4 lookup table "
                         f"({type(exc).__name__}: {short_repr(str(exc))})") from None
    try:
        with handle:
            return _check_handle(handle, path, h5py)
    except TableError:
        raise
    except Exception as exc:  # damaged metadata surfaces as KeyError, OSError, ...
        raise TableError(f"{path}: damaged lookup table metadata ({type(exc).__name__}: "
                         f"{short_repr(str(exc))})") from None


def _check_handle(handle: Any, path: str, h5py: Any) -> int:
    attrs = handle.attrs
    for name in ("schema", "schema_version", "sweep"):
        if name not in attrs:
            raise TableError(f"{path}: not an xbar-circuit lookup table (no {name!r} "
                             "attribute)")
        size = attrs.get_id(name).get_storage_size()
        if size > _MAX_ATTRIBUTE_BYTES:
            raise TableError(f"{path}: attribute {name!r} declares {size} bytes, more than a "
                             "lookup table writes")
    _check_schema_attrs(attrs, path)
    sweep = _attr_sweep(attrs["sweep"], path)
    layout = expected_layout(sweep)
    datasets = {k: v for k, v in handle.items() if isinstance(v, h5py.Dataset)}
    for name, (shape, kinds) in layout.items():
        if name not in datasets:
            if name in _OPTIONAL_VARS:
                continue
            raise TableError(f"{path}: lookup table lacks variable {name!r}")
        data = datasets[name]
        if tuple(data.shape) != shape:
            raise TableError(f"{path}: variable {name!r} declares shape {tuple(data.shape)} but "
                             f"the table's sweep implies {shape}")
        if data.dtype.kind not in kinds:
            stored = "floats" if kinds == "f" else "integers"
            raise TableError(f"{path}: variable {name!r} has dtype {data.dtype}; a lookup "
                             f"table stores {stored} there")
    foreign = 0
    for name, data in datasets.items():
        if name in layout or name in ("map_row", "map_col"):
            continue
        foreign += int(np.prod(data.shape, dtype=np.float64)) * data.dtype.itemsize
    if foreign > _MAX_FOREIGN_BYTES:
        raise TableError(f"{path}: holds {foreign} bytes of variables that are not part of a "
                         "lookup table")
    for name in ("map_row", "map_col"):
        wanted = layout[f"{name}_index"][0][1]
        if name in datasets and tuple(datasets[name].shape) != (wanted,):
            raise TableError(f"{path}: dimension {name!r} declares size "
                             f"{tuple(datasets[name].shape)} but the sweep implies {wanted}")
    return int(sum(np.prod(shape, dtype=np.float64) * 8 for shape, _ in layout.values()))


def _check_values(ds: Any, sweep: Sweep, source: str) -> None:
    """Dtypes, finiteness and coordinates of a table against its sweep."""
    layout = expected_layout(sweep)
    for name, (shape, kinds) in layout.items():
        if name not in ds.variables:
            if name in _OPTIONAL_VARS:
                continue
            raise TableError(f"{source}: lookup table lacks variable {name!r}")
        values = ds[name].values
        if values.dtype.kind not in kinds:
            wanted = "floats" if kinds == "f" else "integers"
            raise TableError(f"{source}: variable {name!r} has dtype {values.dtype}; a lookup "
                             f"table stores {wanted} there")
        if tuple(values.shape) != shape:
            raise TableError(f"{source}: variable {name!r} has shape {tuple(values.shape)} but "
                             f"the table's sweep implies {shape}")
        if kinds != "f":
            continue
        if name in _FINITE_VARS or name in DIMS:
            bad = ~np.isfinite(values)
        else:  # NaN marks cells past an array's edge and rows without input
            bad = np.isinf(values)
        if bad.any():
            where = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
            raise TableError(f"{source}: variable {name!r} holds non-finite values "
                             f"({name}[{where}] = {values[tuple(np.argwhere(bad)[0])]!r})")
    for name in DIMS:
        if not np.array_equal(np.asarray(ds[name].values, dtype=np.float64),
                              np.asarray(sweep.grid[name], dtype=np.float64)):
            raise TableError(f"{source}: coordinate {name!r} does not hold the grid of the "
                             "table's sweep")
    for axis, name in (("rows", "map_row_index"), ("cols", "map_col_index")):
        index = np.asarray(ds[name].values)
        for a, size in enumerate(sweep.grid[axis]):
            kept = sweep.map_indices(size)
            if not (np.array_equal(index[a, : kept.size], kept)
                    and np.all(index[a, kept.size:] == -1)):
                raise TableError(f"{source}: {name!r} does not match the table's sweep")
