"""The reference corpus: every case simulated with ngspice and committed.

Each case is a seeded recipe; ``make references`` turns it into a spec (JSON), the
exact deck ngspice ran, and ngspice's binary rawfile. Sizes reach 256x256 (linear),
64x64 (nonlinear) and 128x128 (a TIA variant with drivers on both ends): affordable
with an ngspice built with KLU (Debian's bookworm-backports ngspice 46 takes seconds);
Debian 12's own ngspice 39 would take minutes to hours for the largest ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xbar_circuit import Crossbar
from xbar_circuit.devices import AccessTransistor, Device, Linear, OneS1R, OneT1R, Selector, Sinh
from xbar_circuit.periphery import TIA

__all__ = ["Case", "CASES", "QUICK_CASES", "MODELS", "PERIPHERY", "case_by_name"]

MODELS: dict[str, Device] = {
    "linear": Linear(),
    "sinh": Sinh(k=3.0),
    "1s1r": OneS1R(Selector(i_0=1e-5, v_0=0.08), Sinh(k=2.0)),
    "1t1r": OneT1R(AccessTransistor(v_th=0.4, k_n=5e-4), Linear(), v_gate=1.0),
}
"""Device model of a case by name (docs/models.md)."""

PERIPHERY: dict[str, dict] = {
    "default": {},
    "tia": {"tia": TIA(gain=1e3, r_feedback=2e4)},
    "sense_load": {"sense_load": 1e3},
    "sense_top": {"sense_side": "top"},
    "driver_right": {"driver_side": "right"},
    "driver_both": {"driver_side": "both"},
    "segments": {},  # per-segment wire arrays, drawn from the case's seed
    "all": {"driver_side": "both", "sense_side": "top", "tia": TIA(gain=1e4, r_feedback=1e4)},
    "tia_both": {"driver_side": "both", "tia": TIA(gain=1e4, r_feedback=1e4)},
}
"""Topology / periphery options of a case by name (docs/models.md)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """A seeded recipe for one reference case.

    Attributes
    ----------
    name : str
        Folder name under ``validation/references``.
    n_rows, n_cols : int
        Array size M x N.
    pattern : str
        ``"random"`` (uniform in [g_off, g_on]), ``"binary"`` (ON with probability
        ``density``), ``"sparse"`` (binary with density 0.05 and g_off = 0: open cells).
    r_row, r_col, r_driver, r_sense : float
        Resistances in ohms.
    inputs : str
        ``"uniform"`` (0.2 V on every row), ``"random"`` (uniform in [0, 0.3] V) or
        ``"signed"`` (uniform in [-0.3, 0.3] V).
    seed : int
        Seed of the conductances and inputs.
    model : str
        Device model, a key of :data:`MODELS`.
    periphery : str
        Topology and periphery options, a key of :data:`PERIPHERY` (``"segments"``:
        per-segment wires uniform in [0.5, 1.5] x ``r_row`` / ``r_col``).
    """

    name: str
    n_rows: int
    n_cols: int
    pattern: str
    r_row: float
    r_col: float
    r_driver: float = 0.0
    r_sense: float = 0.0
    inputs: str = "random"
    seed: int = 0
    model: str = "linear"
    g_off: float = 1e-6
    g_on: float = 1e-4
    density: float = 0.5
    periphery: str = "default"

    @property
    def size(self) -> str:
        """``"MxN"``."""
        return f"{self.n_rows}x{self.n_cols}"

    def crossbar(self) -> Crossbar:
        """Build the case's crossbar (deterministic)."""
        rng = np.random.default_rng(self.seed)
        shape = (self.n_rows, self.n_cols)
        if self.pattern == "random":
            g = rng.uniform(self.g_off, self.g_on, shape)
        elif self.pattern == "binary":
            g = np.where(rng.random(shape) < self.density, self.g_on, self.g_off)
        elif self.pattern == "sparse":
            g = np.where(rng.random(shape) < 0.05, self.g_on, 0.0)
        else:
            raise ValueError(f"unknown pattern {self.pattern!r}")
        if self.model == "linear" and self.periphery == "default":
            return Crossbar(g, r_row=self.r_row, r_col=self.r_col, r_driver=self.r_driver,
                            r_sense=self.r_sense)
        options = dict(PERIPHERY[self.periphery])
        r_row: float | np.ndarray = self.r_row
        r_col: float | np.ndarray = self.r_col
        if self.periphery == "segments":
            seg = np.random.default_rng(self.seed + 20_000)
            r_row = self.r_row * seg.uniform(0.5, 1.5, shape)
            r_col = self.r_col * seg.uniform(0.5, 1.5, shape)
        return Crossbar(g, r_row=r_row, r_col=r_col, r_driver=self.r_driver,
                        r_sense=self.r_sense, device=MODELS[self.model], **options)

    def v_in(self) -> np.ndarray:
        """The case's input vector in volts (deterministic)."""
        rng = np.random.default_rng(self.seed + 10_000)
        if self.inputs == "uniform":
            return np.full(self.n_rows, 0.2)
        if self.inputs == "random":
            return rng.uniform(0.0, 0.3, self.n_rows)
        if self.inputs == "signed":
            return rng.uniform(-0.3, 0.3, self.n_rows)
        raise ValueError(f"unknown input pattern {self.inputs!r}")


def _cases() -> list[Case]:
    cases = [
        Case("c01_1x1", 1, 1, "random", 1.0, 1.0, seed=1),
        Case("c02_1x1_periphery", 1, 1, "random", 1.0, 1.0, 100.0, 50.0, seed=2),
        Case("c03_1x16_wordline", 1, 16, "random", 2.0, 2.0, seed=3),
        Case("c04_16x1_bitline", 16, 1, "random", 2.0, 2.0, 10.0, 10.0, seed=4),
        Case("c05_4x4", 4, 4, "random", 1.0, 1.0, seed=5),
        Case("c06_8x8_binary", 8, 8, "binary", 1.0, 1.0, seed=6),
        Case("c07_8x8_binary_periphery", 8, 8, "binary", 1.0, 1.0, 20.0, 20.0, seed=7),
        Case("c08_16x16_r0.01", 16, 16, "random", 0.01, 0.01, seed=8),
        Case("c09_16x16_r10", 16, 16, "random", 10.0, 10.0, 50.0, 25.0, seed=9),
        Case("c10_16x48_wide", 16, 48, "binary", 1.0, 2.0, seed=10, density=0.3),
        Case("c11_48x16_tall", 48, 16, "binary", 2.0, 1.0, 10.0, 0.0, seed=11, density=0.7),
        Case("c12_32x32_sparse", 32, 32, "sparse", 1.0, 1.0, seed=12),
        Case("c13_32x32_signed", 32, 32, "random", 1.0, 1.0, 5.0, 5.0, inputs="signed",
             seed=13),
        Case("c14_32x32_uniform_on", 32, 32, "binary", 2.5, 2.5, 10.0, 10.0,
             inputs="uniform", seed=14, density=1.0),
        Case("c15_32x64", 32, 64, "random", 0.5, 1.5, 0.0, 10.0, seed=15),
        Case("c16_64x64_binary", 64, 64, "binary", 1.0, 1.0, 10.0, 10.0, seed=16,
             g_off=1e-6, g_on=1e-4),
        Case("c17_64x64_r10", 64, 64, "random", 10.0, 10.0, seed=17, g_off=1e-7,
             g_on=1e-5),
        Case("c18_64x32_r0.01_highg", 64, 32, "random", 0.01, 0.01, 1.0, 1.0, seed=18,
             g_off=1e-5, g_on=1e-3),
        Case("c19_8x8_zero_row_wire", 8, 8, "random", 0.0, 1.0, 10.0, 5.0, seed=19),
        Case("c20_8x8_zero_col_wire", 8, 8, "random", 1.0, 0.0, 5.0, 10.0, seed=20),
        # Periphery and topology variants (linear cells).
        Case("v01_16x16_tia", 16, 16, "random", 1.0, 1.0, 5.0, 5.0, seed=21, periphery="tia"),
        Case("v02_16x16_sense_load", 16, 16, "random", 1.0, 1.0, 5.0, 0.0, seed=22,
             periphery="sense_load"),
        Case("v03_16x12_sense_top", 16, 12, "random", 2.0, 1.0, 10.0, 5.0, seed=23,
             periphery="sense_top"),
        Case("v04_12x16_driver_right", 12, 16, "random", 1.0, 2.0, 10.0, 5.0, seed=24,
             periphery="driver_right"),
        Case("v05_16x16_driver_both", 16, 16, "binary", 2.0, 2.0, 10.0, 10.0, seed=25,
             periphery="driver_both"),
        Case("v06_16x16_segments", 16, 16, "random", 1.0, 1.0, 5.0, 5.0, seed=26,
             periphery="segments"),
        Case("v07_32x32_all", 32, 32, "random", 1.0, 1.0, 10.0, 10.0, seed=27,
             periphery="all"),
        # Nonlinear cells.
        Case("n01_16x16_sinh", 16, 16, "random", 1.0, 1.0, 5.0, 5.0, inputs="signed",
             seed=31, model="sinh"),
        Case("n02_32x32_sinh", 32, 32, "random", 2.0, 2.0, 10.0, 10.0, seed=32,
             model="sinh"),
        Case("n03_16x16_1s1r", 16, 16, "random", 1.0, 1.0, 5.0, 5.0, inputs="signed",
             seed=33, model="1s1r"),
        Case("n04_16x16_1t1r", 16, 16, "random", 1.0, 1.0, 5.0, 5.0, seed=34,
             model="1t1r"),
        Case("n05_16x16_sinh_all", 16, 16, "random", 1.0, 1.0, 10.0, 10.0, seed=35,
             model="sinh", periphery="all"),
        Case("n06_16x16_1t1r_segments", 16, 16, "binary", 1.0, 1.0, 5.0, 5.0, seed=36,
             model="1t1r", periphery="segments"),
        # Real sizes (recorded with an ngspice that has KLU).
        Case("c21_128x128", 128, 128, "random", 1.0, 1.0, 10.0, 10.0, seed=41),
        Case("c22_256x256", 256, 256, "binary", 0.5, 0.5, 5.0, 5.0, seed=42, density=0.5),
        Case("n07_64x64_1s1r", 64, 64, "random", 1.0, 1.0, 5.0, 5.0, seed=43,
             model="1s1r"),
        Case("v08_128x128_tia_both", 128, 128, "random", 1.0, 1.0, 10.0, 10.0, seed=44,
             periphery="tia_both"),
    ]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases


CASES: tuple[Case, ...] = tuple(_cases())
"""Every reference case, small to large."""

QUICK_CASES: tuple[Case, ...] = tuple(c for c in CASES if c.n_rows * c.n_cols <= 1024)
"""The fast subset (up to 32x32 cells) run by ``make test``."""


def case_by_name(name: str) -> Case:
    """Return the case called ``name``.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the known ones).
    """
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"unknown case {name!r}; known: {', '.join(c.name for c in CASES)}")
