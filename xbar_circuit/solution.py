"""The solution object every backend returns, and the nonideality metrics (DESIGN.md §2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

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
        I_ideal = 0. For non-negative inputs this is DESIGN.md's rule (columns with
        I_ideal > 0).
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
        """
        weights = np.asarray(column_weights, dtype=np.float64)
        if weights.shape != (self.crossbar.n_cols,):
            raise ValueError(
                f"column_weights must have shape ({self.crossbar.n_cols},), got {weights.shape}"
            )
        ideal = np.atleast_2d(self.ideal_currents) @ weights
        actual = np.atleast_2d(self.column_currents) @ weights
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(ideal != 0, (ideal - actual) / ideal, np.nan)
        return values if self.batched else float(values[0])

    def metric(self, name: str, **kwargs: Any) -> Any:
        """Return a metric by name; see :data:`METRICS` for the names.

        Raises
        ------
        KeyError
            For an unknown metric name (the message lists the known ones).
        """
        try:
            func = METRICS[name]
        except KeyError:
            known = ", ".join(sorted(METRICS))
            raise KeyError(f"unknown metric {name!r}; known: {known}") from None
        return func(self, **kwargs)

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
            load, per-segment wires): the formula below is today's circuit only.
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


METRICS: dict[str, Callable[..., Any]] = {
    "nf": lambda s: s.nf,
    "nf_columns": lambda s: s.nf_columns,
    "nf_aggregate": lambda s: s.nf_aggregate,
    "nf_bit_weighted": lambda s, column_weights: s.nf_bit_weighted(column_weights),
    "cell_loss": lambda s: s.cell_loss,
    "relative_error": lambda s: s.relative_error,
}
"""Metrics by name (DESIGN.md §2): ``nf`` (mean column NF), ``nf_columns``,
``nf_aggregate``, ``nf_bit_weighted``, ``cell_loss`` (1 - V_cell/V_in) and
``relative_error`` (‖I - I_ideal‖/‖I_ideal‖)."""
