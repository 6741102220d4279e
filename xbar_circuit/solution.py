"""The solution object every backend returns, and the nonideality metrics.

The circuit convention and the definitions of the metrics are in the documentation page
``docs/convention.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._optional import import_optional
from ._version import __version__
from .errors import InputError
from .spec import Crossbar

__all__ = ["CrossbarSolution", "METRICS", "BackendOutput"]


@dataclasses.dataclass
class BackendOutput:
    """What a backend computes for a batch; :func:`xbar_circuit.solve` wraps it.

    Attributes
    ----------
    row_voltages : ndarray, shape (B, M, N)
        Row-wire node voltages V(r(i, j)) in volts.
    column_voltages : ndarray, shape (B, M, N)
        Column-wire node voltages V(c(i, j)) in volts.
    column_currents : ndarray, shape (B, N)
        Current from each column into its sense amplifier's virtual ground, in amperes.
    info : dict
        Backend metadata (method, iterations, timings, versions...).
    port_voltages : ndarray, shape (B, N), optional
        Output voltage of each column's finite-gain TIA, or the voltage across its
        sense load, in volts (None with ideal TIAs).
    """

    row_voltages: np.ndarray
    column_voltages: np.ndarray
    column_currents: np.ndarray
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    port_voltages: np.ndarray | None = None


def _nonzero_mask(ideal: np.ndarray) -> np.ndarray:
    return ideal != 0.0


class CrossbarSolution:
    """Node voltages and output currents of one crossbar for one input or a batch.

    The same class is returned by every backend. Arrays have a leading batch axis
    only when the input voltages had one: for ``v_in`` of shape (M,) the column
    currents have shape (N,), for (B, M) they have shape (B, N).

    Attributes
    ----------
    crossbar : Crossbar
        The solved array.
    v_in : ndarray, shape (M,) or (B, M)
        Source voltages in volts.
    backend : str
        Name of the backend that produced the solution.
    column_currents : ndarray, shape (N,) or (B, N)
        Current flowing from column j into the sense amplifier's virtual ground, in
        amperes (positive for positive inputs and conductances).
    row_voltages, column_voltages : ndarray, shape (M, N) or (B, M, N)
        Voltages of the row-wire node r(i, j) and column-wire node c(i, j), in volts.
    info : dict
        Backend metadata.
    """

    def __init__(
        self, crossbar: Crossbar, v_in: np.ndarray, backend: str, output: BackendOutput,
        batched: bool,
    ) -> None:
        self.crossbar = crossbar
        self.backend = backend
        self.batched = batched
        self.info = dict(output.info)
        squeeze = (lambda a: a) if batched else (lambda a: a[0])
        self._v_in_batch = v_in
        self.v_in = squeeze(v_in)
        self.row_voltages = squeeze(output.row_voltages)
        self.column_voltages = squeeze(output.column_voltages)
        self.column_currents = squeeze(output.column_currents)
        for array in (self.v_in, self.row_voltages, self.column_voltages, self.column_currents):
            array.setflags(write=False)
        self._port_voltages = None if output.port_voltages is None else \
            squeeze(np.asarray(output.port_voltages, dtype=np.float64))
        if self._port_voltages is not None:
            self._port_voltages.setflags(write=False)
        self.v_gate = output.info.get("v_gate")

    @property
    def tia_output_voltages(self) -> np.ndarray | None:
        """Output voltage of each column's finite-gain TIA, ``-I R_f A/(1+A)``, in volts;
        (…, N). None unless the crossbar has ``tia``."""
        return self._port_voltages if self.crossbar.tia is not None else None

    @property
    def sense_voltages(self) -> np.ndarray | None:
        """Voltage across each column's sense load, ``I · sense_load``, in volts; (…, N).
        None unless the crossbar has ``sense_load``."""
        return self._port_voltages if self.crossbar.sense_load is not None else None

    @property
    def newton_iterations(self) -> int | None:
        """Newton iterations used (max over the batch); None for a linear solve."""
        value = self.info.get("newton_iterations")
        return None if value is None else int(value)

    def __repr__(self) -> str:
        m, n = self.crossbar.shape
        batch = f"batch of {self._v_in_batch.shape[0]}, " if self.batched else ""
        return f"<CrossbarSolution {m}x{n}, {batch}backend={self.backend!r}>"

    # ----------------------------------------------------------- derived fields
    @property
    def cell_voltages(self) -> np.ndarray:
        """Voltage across each cell, V(r(i,j)) - V(c(i,j)), in volts; (…, M, N)."""
        return self.row_voltages - self.column_voltages

    @property
    def cell_currents(self) -> np.ndarray:
        """Current through each cell from row to column, in amperes; (…, M, N)."""
        if self.crossbar.is_linear:
            return self.crossbar.conductance * self.cell_voltages
        gates = self.crossbar.gate_voltages(self.v_gate)
        return self.crossbar.device.current(self.cell_voltages, self.crossbar.conductance,
                                            None if gates is None else gates[:, None])

    @property
    def row_currents(self) -> np.ndarray:
        """Current delivered by each row's source, in amperes; (…, M).

        By Kirchhoff's current law it equals the sum of the row's cell currents.
        """
        return self.cell_currents.sum(axis=-1)

    @property
    def ideal_currents(self) -> np.ndarray:
        """Ideal output ``V · G`` in amperes (no wire, driver or sense resistance); (…, N)."""
        return self.v_in @ self.crossbar.conductance

    # ------------------------------------------------------------------ metrics
    @property
    def nf_columns(self) -> np.ndarray:
        """Column nonideality factor ``(I_ideal - I) / I_ideal``; NaN where I_ideal = 0."""
        ideal = self.ideal_currents
        mask = _nonzero_mask(ideal)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (ideal - self.column_currents) / np.where(mask, ideal, 1.0)
            out = np.where(mask, ratio, np.nan)
        return out

    @property
    def nf(self) -> float | np.ndarray:
        """Array nonideality factor: mean of :attr:`nf_columns` over columns with I_ideal != 0.

        A float for a single input, shape (B,) for a batch; NaN when every column has
        I_ideal = 0. For non-negative inputs these are the columns with I_ideal > 0, the
        definition of ``docs/convention.md``.
        """
        per_column = np.atleast_2d(self.nf_columns)
        counts = np.sum(~np.isnan(per_column), axis=-1)
        sums = np.nansum(per_column, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return values if self.batched else float(values[0])

    @property
    def nf_aggregate(self) -> float | np.ndarray:
        """Aggregate nonideality ``Σ_j (I_ideal - I) / Σ_j I_ideal`` (NaN if Σ I_ideal = 0)."""
        ideal = np.atleast_2d(self.ideal_currents)
        actual = np.atleast_2d(self.column_currents)
        total = ideal.sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(total != 0, (ideal - actual).sum(axis=-1) / total, np.nan)
        return values if self.batched else float(values[0])

    @property
    def relative_error(self) -> float | np.ndarray:
        """Relative MVM error ``‖I - I_ideal‖₂ / ‖I_ideal‖₂`` (NaN if ‖I_ideal‖ = 0)."""
        ideal = np.atleast_2d(self.ideal_currents)
        actual = np.atleast_2d(self.column_currents)
        norm = np.linalg.norm(ideal, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(norm > 0, np.linalg.norm(actual - ideal, axis=-1) / norm, np.nan)
        return values if self.batched else float(values[0])

    @property
    def cell_loss(self) -> np.ndarray:
        """Per-cell loss map ``1 - V_cell / V_in`` (dimensionless); NaN on rows with V_in = 0."""
        v_row = self.v_in[..., :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v_row != 0, 1.0 - self.cell_voltages / np.where(v_row != 0, v_row, 1.0),
                            np.nan)

    def nf_bit_weighted(self, column_weights: np.ndarray) -> float | np.ndarray:
        """Bit-weighted output nonideality for bit-sliced columns.

        ``Σ_j w_j (I_ideal,j - I_j) / Σ_j w_j I_ideal,j`` with, e.g., ``w_j = 2**bit(j)``,
        the relative error of the shift-and-add recombined output.

        Parameters
        ----------
        column_weights : array_like, shape (N,)
            Digital weight of each column in the recombination (dimensionless).

        Raises
        ------
        InputError
            If ``column_weights`` does not hold one finite weight per column.
        """
        weights = np.asarray(column_weights, dtype=np.float64)
        if weights.shape != (self.crossbar.n_cols,) or not np.all(np.isfinite(weights)):
            raise InputError(
                f"column_weights must hold {self.crossbar.n_cols} finite weights (one per "
                f"column), got an array of shape {weights.shape}"
            )
        ideal = np.atleast_2d(self.ideal_currents) @ weights
        actual = np.atleast_2d(self.column_currents) @ weights
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(ideal != 0, (ideal - actual) / ideal, np.nan)
        return values if self.batched else float(values[0])

    def metric(self, name: str, **kwargs: Any) -> Any:
        """Return a metric by name; see :data:`METRICS` for the names.

        Parameters
        ----------
        name : str
            One of :data:`METRICS`.
        **kwargs
            Arguments of the metric: ``nf_bit_weighted`` needs ``column_weights``, the
            digital weight of each of the N columns (e.g. ``2**bit``); the others take none.

        Raises
        ------
        InputError
            For an unknown metric name (the message lists the known ones), or arguments
            the metric does not take or misses.

        Examples
        --------
        >>> import numpy as np
        >>> from xbar_circuit import Crossbar, solve
        >>> sol = solve(Crossbar(np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0), np.ones(2))
        >>> sol.metric("nf") == sol.nf
        True
        >>> w = [1.0, 2.0]
        >>> sol.metric("nf_bit_weighted", column_weights=w) == sol.nf_bit_weighted(w)
        True
        """
        if name not in METRICS:
            known = ", ".join(sorted(METRICS))
            raise InputError(f"unknown metric {name!r}; the metrics are: {known}")
        needed = _METRIC_ARGUMENTS.get(name, ())
        missing = [arg for arg in needed if arg not in kwargs]
        unknown = sorted(set(kwargs) - set(needed))
        if missing:
            raise InputError(
                f"metric {name!r} needs {', '.join(missing)}=...: the digital weight of each "
                f"of the {self.crossbar.n_cols} columns, e.g. column_weights=2**bit_index"
            )
        if unknown:
            takes = ", ".join(needed) if needed else "no arguments"
            raise InputError(f"metric {name!r} takes {takes}; got {', '.join(unknown)}")
        return METRICS[name](self, **kwargs)

    # -------------------------------------------------------------------- power
    @property
    def power_delivered(self) -> float | np.ndarray:
        """Power delivered by the row sources, Σ_i V_i · I_src,i, in watts."""
        values = np.sum(np.atleast_2d(self.v_in) * np.atleast_2d(self.row_currents), axis=-1)
        return values if self.batched else float(values[0])

    @property
    def power_dissipated(self) -> float | np.ndarray:
        """Power dissipated in cells, wires, drivers and sense resistors, in watts.

        Raises
        ------
        NotImplementedError
            For variant topologies (device models, driver/sense sides, TIA, sense
            load, per-segment wires): the formula below covers the default circuit only.
        """
        xbar = self.crossbar
        if not xbar.is_default_topology:
            raise NotImplementedError(
                "power_dissipated is only implemented for the default circuit (linear "
                "cells, left drivers, bottom ideal TIAs, scalar wires); see docs/models.md")
        vr = self.row_voltages if self.batched else self.row_voltages[None]
        vc = self.column_voltages if self.batched else self.column_voltages[None]
        g = xbar.conductance
        cells = np.sum(g * (vr - vc) ** 2, axis=(-2, -1))
        i_src = np.atleast_2d(self.row_currents)
        i_col = np.atleast_2d(self.column_currents)
        total = cells
        total = total + np.sum(i_src**2, axis=-1) * (xbar.r_driver + xbar.r_row)
        total = total + np.sum(i_col**2, axis=-1) * (xbar.r_col + xbar.r_sense)
        if xbar.r_row > 0:
            total = total + np.sum(np.diff(vr, axis=-1) ** 2, axis=(-2, -1)) / xbar.r_row
        if xbar.r_col > 0:
            total = total + np.sum(np.diff(vc, axis=-2) ** 2, axis=(-2, -1)) / xbar.r_col
        return total if self.batched else float(total[0])

    # -------------------------------------------------------------- keep and look
    def to_xarray(self) -> Any:
        """The solution as a labelled :class:`xarray.Dataset`, with units.

        Dimensions are ``batch`` (only for a batch of inputs), ``row`` (i, M of them) and
        ``column`` (j, N). Every variable has a ``units`` attribute (``V``, ``A``, ``S`` or
        ``1`` for dimensionless) and a ``long_name``; the dataset's attributes hold the
        backend, its metadata and the crossbar spec as JSON, so that :meth:`load` rebuilds
        the same solution.

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        MissingDependencyError
            If xarray is not installed (``pip install "xbar-circuit[tables]"``).

        Examples
        --------
        >>> import numpy as np
        >>> from xbar_circuit import Crossbar, solve
        >>> sol = solve(Crossbar(np.full((2, 3), 1e-4), r_row=1.0, r_col=1.0), np.ones(2))
        >>> ds = sol.to_xarray()
        >>> dict(ds.sizes), ds["column_currents"].attrs["units"]
        ({'row': 2, 'column': 3}, 'A')
        """
        xr = import_optional("xarray", "CrossbarSolution.to_xarray")
        lead = ("batch",) if self.batched else ()
        row_col = (*lead, "row", "column")

        def var(dims: tuple[str, ...], values: Any, units: str, long_name: str) -> Any:
            return xr.Variable(dims, np.array(values, dtype=np.float64),
                               attrs={"units": units, "long_name": long_name})

        data = {
            "v_in": var((*lead, "row"), self.v_in, "V", "source voltage of row i"),
            "column_currents": var((*lead, "column"), self.column_currents, "A",
                                   "current from column j into the sense amplifier"),
            "ideal_currents": var((*lead, "column"), self.ideal_currents, "A",
                                  "ideal output V·G"),
            "row_voltages": var(row_col, self.row_voltages, "V", "row-wire node voltage"),
            "column_voltages": var(row_col, self.column_voltages, "V",
                                   "column-wire node voltage"),
            "cell_currents": var(row_col, self.cell_currents, "A",
                                 "cell current from row to column"),
            "nf_columns": var((*lead, "column"), self.nf_columns, "1",
                              "column nonideality factor (I_ideal - I) / I_ideal"),
            "nf": var(lead, self.nf, "1", "mean column nonideality factor"),
            "conductance": var(("row", "column"), self.crossbar.conductance, "S",
                               "cell conductance"),
        }
        if self._port_voltages is not None:
            data["port_voltages"] = var(
                (*lead, "column"), self._port_voltages, "V",
                "finite-gain TIA output voltage" if self.crossbar.tia is not None
                else "voltage across the sense load")
        coords = {"row": np.arange(self.crossbar.n_rows),
                  "column": np.arange(self.crossbar.n_cols)}
        if self.batched:
            coords["batch"] = np.arange(self._v_in_batch.shape[0])
        attrs = {
            "title": "xbar-circuit crossbar solution",
            "backend": self.backend,
            "batched": int(self.batched),
            "crossbar": self.crossbar.to_json(),
            "info": json.dumps(self.info, default=_json_default),
            "xbar_circuit_version": __version__,
            "convention": "docs/convention.md of xbar-circuit: rows driven at index 0 "
                          "(left), sense amplifiers after row M-1 (bottom), currents into "
                          "the virtual ground positive",
        }
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the solution to a NetCDF-4 file (see :meth:`to_xarray` for its content).

        Parameters
        ----------
        path : str or path-like
            File to write, conventionally ``*.nc``; read it back with :meth:`load`.

        Raises
        ------
        MissingDependencyError
            If xarray or h5netcdf is not installed (``pip install "xbar-circuit[tables]"``).
        OSError
            If the file cannot be written.
        """
        dataset = self.to_xarray()
        import_optional("h5netcdf", "CrossbarSolution.save")
        dataset.to_netcdf(os.fspath(path), engine="h5netcdf")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CrossbarSolution:
        """Read a solution written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A NetCDF file written by :meth:`save`.

        Returns
        -------
        CrossbarSolution
            Equal, array by array, to the solution that was saved.

        Raises
        ------
        InputError
            If the file does not exist or is not a saved solution.
        MissingDependencyError
            If xarray or h5netcdf is not installed.
        """
        xr = import_optional("xarray", "CrossbarSolution.load")
        import_optional("h5netcdf", "CrossbarSolution.load")
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise InputError(f"no saved solution at {path!r}")
        try:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                ds = ds.load()
        except Exception as exc:  # h5py/h5netcdf raise several types for non-HDF5 data
            raise InputError(f"{path}: not a readable NetCDF-4 file "
                             f"({type(exc).__name__}: {exc})") from None
        needed = {"v_in", "row_voltages", "column_voltages", "column_currents"}
        if "crossbar" not in ds.attrs or not needed <= set(ds.data_vars):
            raise InputError(f"{path}: not a solution saved by CrossbarSolution.save")
        batched = bool(ds.attrs.get("batched", 0))

        def batch(name: str) -> np.ndarray:
            values = np.asarray(ds[name].values, dtype=np.float64)
            return values if batched else values[None]

        port = batch("port_voltages") if "port_voltages" in ds else None
        output = BackendOutput(batch("row_voltages"), batch("column_voltages"),
                               batch("column_currents"), info=json.loads(ds.attrs["info"]),
                               port_voltages=port)
        return cls(Crossbar.from_json(ds.attrs["crossbar"]), batch("v_in"),
                   str(ds.attrs["backend"]), output, batched)

    def plot(self, path: str | os.PathLike[str] | None = None, *, index: int = 0) -> Any:
        """Draw IR-drop maps of the row and column wires and a map of the cell currents.

        Three panels over the array (row i down, column j across, drivers on the left,
        sense amplifiers at the bottom): the drop along each row wire
        ``V_in,i - V(r(i, j))``, the column-wire voltage ``V(c(i, j))`` (its rise above
        the sense amplifier's virtual ground) and the cell current ``I(i, j)``.

        Parameters
        ----------
        path : str or path-like, optional
            Also write the figure to this file (PNG, PDF or SVG by its suffix).
        index : int, default 0
            Which input of a batch to draw.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        MissingDependencyError
            If matplotlib is not installed (``pip install "xbar-circuit[plot]"``).
        InputError
            If ``index`` is outside the batch.
        """
        import_optional("matplotlib", "CrossbarSolution.plot")
        from matplotlib.figure import Figure

        if self.batched:
            size = self._v_in_batch.shape[0]
            if not -size <= index < size:
                raise InputError(f"index {index} is outside the batch of {size} inputs")
            pick = (lambda a: a[index])  # noqa: E731
        else:
            if index not in (0, -1):
                raise InputError(f"index {index}: the solution has a single input")
            pick = (lambda a: a)  # noqa: E731
        v_in = pick(self.v_in)
        panels = [
            ("Row-wire IR drop  $V_{in,i} - V(r_{ij})$", v_in[:, None] - pick(self.row_voltages),
             "IR drop", "V", "viridis"),
            ("Column-wire voltage  $V(c_{ij})$", pick(self.column_voltages), "voltage", "V",
             "viridis"),
            ("Cell current  $I_{ij}$", pick(self.cell_currents), "current", "A", "magma"),
        ]
        m, n = self.crossbar.shape
        batch = f", input {index}" if self.batched else ""
        fig = Figure(figsize=(13.0, 4.2), layout="constrained")
        fig.suptitle(f"{m}×{n} crossbar, backend {self.backend}{batch}: "
                     f"NF = {float(np.atleast_1d(self.nf)[index]):.4g}")
        for ax, (title, values, quantity, unit, cmap) in zip(fig.subplots(1, 3), panels,
                                                             strict=True):
            scale, prefix = _engineering_scale(values)
            image = ax.imshow(values * scale, cmap=cmap, aspect="auto", interpolation="nearest")
            ax.set_title(title)
            ax.set_xlabel("column j")
            ax.set_ylabel("row i")
            fig.colorbar(image, ax=ax, label=f"{quantity} ({prefix}{unit})")
        if path is not None:
            fig.savefig(os.fspath(path), dpi=120)
        return fig


METRICS: dict[str, Callable[..., Any]] = {
    "nf": lambda s: s.nf,
    "nf_columns": lambda s: s.nf_columns,
    "nf_aggregate": lambda s: s.nf_aggregate,
    "nf_bit_weighted": lambda s, column_weights: s.nf_bit_weighted(column_weights),
    "cell_loss": lambda s: s.cell_loss,
    "relative_error": lambda s: s.relative_error,
}
"""Metrics by name (defined in ``docs/convention.md``): ``nf`` (mean column NF), ``nf_columns``,
``nf_aggregate``, ``nf_bit_weighted``, ``cell_loss`` (1 - V_cell/V_in) and
``relative_error`` (‖I - I_ideal‖/‖I_ideal‖)."""

_METRIC_ARGUMENTS: dict[str, tuple[str, ...]] = {"nf_bit_weighted": ("column_weights",)}
"""Keyword arguments each metric of :data:`METRICS` requires (none for the others)."""


def _json_default(value: Any) -> Any:
    """JSON form of the NumPy values found in backend metadata."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


_PREFIXES = ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n"), (1e12, "p"))


def _engineering_scale(values: np.ndarray) -> tuple[float, str]:
    """Factor and SI prefix that bring the largest magnitude of ``values`` into [1, 1000)."""
    finite = np.abs(values[np.isfinite(values)])
    peak = float(finite.max()) if finite.size else 0.0
    for factor, prefix in _PREFIXES:
        if peak * factor >= 1.0:
            return factor, prefix
    return _PREFIXES[-1] if peak > 0 else (1.0, "")
