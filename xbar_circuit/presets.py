"""Named parameter presets, each citing where its values come from.

A preset fixes the wire resistance per cell, the ON/OFF conductances and a read
voltage. Values taken from a source say so in ``source``; values the source does not
give are listed in ``assumed``, so nothing is passed off as cited that is not.

>>> from xbar_circuit.presets import PRESETS, get_preset
>>> sorted(PRESETS)
['aihwkit_ir_drop', 'neurosim_rram_40nm', 'rram_10k_ratio10']
>>> xbar = get_preset("aihwkit_ir_drop").crossbar(4, 4, density=0.5, seed=0)
>>> xbar.r_row
0.35
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

from .errors import SpecError
from .spec import Crossbar

__all__ = ["Preset", "PRESETS", "get_preset"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """Circuit parameters of a published simulator or device, with their source.

    Attributes
    ----------
    name : str
        Registry key.
    r_row, r_col : float
        Wire resistance per cell segment, ohms.
    g_on, g_off : float
        ON and OFF conductances, siemens.
    v_read : float
        Read (input) voltage, volts.
    r_driver, r_sense : float
        Periphery resistances, ohms.
    source : str
        Where the cited values come from.
    assumed : tuple of str
        Fields the source does not give (our choice, stated).
    """

    name: str
    r_row: float
    r_col: float
    g_on: float
    g_off: float
    v_read: float
    source: str
    assumed: tuple[str, ...] = ()
    r_driver: float = 0.0
    r_sense: float = 0.0

    def crossbar(self, n_rows: int, n_cols: int, *, density: float | None = None,
                 levels: ArrayLike | None = None, seed: int | None = None) -> Crossbar:
        """Build an M x N crossbar with this preset's wires and conductances.

        Parameters
        ----------
        n_rows, n_cols : int
            Array size M x N.
        density : float, optional
            Binary array: each cell ON (``g_on``) with this probability, else ``g_off``.
        levels : array_like, optional
            Instead of ``density``: an (M, N) array of states in [0, 1] mapped linearly
            to ``g_off + state (g_on - g_off)``.
        seed : int, optional
            Seed of the random ON/OFF pattern.

        Returns
        -------
        Crossbar
        """
        if levels is not None:
            state = np.asarray(levels, dtype=np.float64)
            if state.shape != (n_rows, n_cols):
                raise SpecError(f"levels must have shape ({n_rows}, {n_cols}), got {state.shape}")
            if np.any((state < 0) | (state > 1)) or not np.all(np.isfinite(state)):
                raise SpecError("levels must be finite states in [0, 1]")
            g = self.g_off + state * (self.g_on - self.g_off)
            return Crossbar(g, r_row=self.r_row, r_col=self.r_col, r_driver=self.r_driver,
                            r_sense=self.r_sense)
        return Crossbar.random(n_rows, n_cols, r_row=self.r_row, r_col=self.r_col,
                               r_driver=self.r_driver, r_sense=self.r_sense, g_off=self.g_off,
                               g_on=self.g_on, density=0.5 if density is None else density,
                               seed=seed)


def _neurosim_wire_per_cell() -> float:
    """NeuroSim's wire resistance per 1T1R cell at 40 nm wire width (ohms).

    ``Rho / (w² · AR) · (4 · w)`` with Rho = 4.03e-8 ohm·m, AR = 1.90, w = 40 nm and a
    1T1R cell 4 feature sizes long (Param.cpp of DNN_NeuroSim_V1.0).
    """
    width = 40e-9
    return 4.03e-8 / (width * width * 1.90) * (4 * width)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="aihwkit_ir_drop",
            r_row=0.35, r_col=0.35, g_on=5e-6, g_off=0.0, v_read=0.2,
            source=(
                "IBM aihwkit, IOParameters.ir_drop_g_ratio = 1 / 0.35 / 5e-6 "
                "(aihwkit/simulator/parameters/io.py): 0.35 ohm of wire from one cell to "
                "the next and a maximal device conductance of 5e-6 S (its docstring says "
                "'5mS'; the value is 5 µS)"
            ),
            assumed=("g_off = 0 S (open OFF cells)", "v_read = 0.2 V"),
        ),
        Preset(
            name="neurosim_rram_40nm",
            r_row=_neurosim_wire_per_cell(), r_col=_neurosim_wire_per_cell(),
            g_on=1 / 100e3, g_off=1 / 10e6, v_read=0.5,
            source=(
                "DNN_NeuroSim_V1.0, Inference_tensorflow/source/NeuroSIM/Param.cpp: "
                "resistanceOn = 100e3, resistanceOff = 10e6, readVoltage = 0.5, wireWidth "
                "40 nm (AR 1.90, Rho 4.03e-8 ohm·m), 1T1R cell 4F x 4F, giving "
                f"{_neurosim_wire_per_cell():.4f} ohm per cell segment"
            ),
            assumed=("access transistor not modelled (linear cell)",),
        ),
        Preset(
            name="rram_10k_ratio10",
            r_row=1.0, r_col=1.0, g_on=1 / 10e3, g_off=1 / 100e3, v_read=0.2,
            source=(
                "generic RRAM figures (R_on 10-20 kohm, "
                "on/off ratio 10); no primary publication is cited for them"
            ),
            assumed=("wire 1 ohm per cell segment", "v_read = 0.2 V"),
        ),
    )
}
"""Presets by name."""


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``.

    Raises
    ------
    SpecError
        For an unknown name (the message lists the known ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
