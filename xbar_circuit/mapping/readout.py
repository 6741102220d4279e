"""Periphery of a compute-in-memory tile: column ADC, g_off offset removal, calibration.

A column current is turned back into a digit sum in three optional steps, each
described by :class:`Periphery` (the defaults reproduce an ideal readout):

1. **Offset** (``offset``): the ``levels[0]`` (g_off) contribution ``g_off · ΣV`` is
   subtracted digitally from the known inputs (``"digital"``, default), or the current
   of a reference column of g_off cells in the same array is subtracted in the analog
   domain (``"reference"``; needs ``MappingConfig(reference_column=True)``), so that the
   reference sees the same wire drop as the data columns.
2. **ADC** (``adc_bits``): a per-column uniform quantizer over ``[lo, hi]`` amperes with
   clipping. ``adc_range="calibrated"`` takes ``lo, hi`` as the smallest and largest
   current the column carries on calibration activations; ``"full_scale"`` uses
   ``±v_read · Σ_i G_ij`` (every real row at full scale), which needs no calibration.
   Default: no ADC (``adc_bits=None``).
3. **Calibration** (``calibration``): a per-column gain (``"gain"``) or gain and offset
   (``"gain_offset"``) fitted by least squares so that the read digit sums match the
   ideal ones on calibration activations. Default ``"none"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .quantize import MappingError, _check_int

__all__ = ["Periphery", "TileCalibration", "adc_quantize", "fit_column_gain"]

OFFSETS = ("digital", "reference")
ADC_RANGES = ("calibrated", "full_scale")
CALIBRATIONS = ("none", "gain", "gain_offset")


@dataclass(frozen=True)
class Periphery:
    """Readout options of every tile (see the module docstring for the model).

    Parameters
    ----------
    adc_bits : int, optional
        Resolution of the per-column ADC, 1 to 16 bits; None (default) reads the
        current exactly.
    adc_range : {"calibrated", "full_scale"}
        ADC input range per column: from calibration activations (default) or the
        column's full-scale current ``±v_read · Σ_i G_ij`` (amperes).
    offset : {"digital", "reference"}
        How the g_off contribution is removed (default ``"digital"``).
    calibration : {"none", "gain", "gain_offset"}
        Per-column digital correction fitted on calibration activations (default
        ``"none"``).
    """

    adc_bits: int | None = None
    adc_range: str = "calibrated"
    offset: str = "digital"
    calibration: str = "none"

    def __post_init__(self) -> None:
        if self.adc_bits is not None:
            _check_int("adc_bits", self.adc_bits, 1, 16)
        for name, allowed in (("adc_range", ADC_RANGES), ("offset", OFFSETS),
                              ("calibration", CALIBRATIONS)):
            if getattr(self, name) not in allowed:
                raise MappingError(f"{name} must be one of {', '.join(allowed)}; got "
                                   f"{getattr(self, name)!r}")

    @property
    def needs_calibration(self) -> bool:
        """True when a :func:`~xbar_circuit.mapping.calibrate_layer` pass is required."""
        return ((self.adc_bits is not None and self.adc_range == "calibrated")
                or self.calibration != "none")

    @property
    def is_ideal(self) -> bool:
        """True for the ideal readout (no ADC, digital offset, no calibration)."""
        return self.adc_bits is None and self.offset == "digital" and self.calibration == "none"

    def label(self) -> str:
        """Short human-readable name, e.g. ``"ADC 8 b + gain/offset cal"``."""
        parts = [f"ADC {self.adc_bits} b ({self.adc_range})" if self.adc_bits else "no ADC"]
        if self.offset == "reference":
            parts.append("reference column")
        parts.append({"none": "uncalibrated", "gain": "gain cal",
                      "gain_offset": "gain/offset cal"}[self.calibration])
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass
class TileCalibration:
    """Per-column readout constants of one tile (from calibration activations).

    Attributes
    ----------
    adc_lo, adc_hi : ndarray, shape (C,), optional
        ADC range per column in amperes (None without a calibrated ADC).
    gain, offset : ndarray, shape (C,)
        Digit-sum correction ``d' = gain · d + offset`` (dimensionless, digit units).
    """

    adc_lo: np.ndarray | None
    adc_hi: np.ndarray | None
    gain: np.ndarray
    offset: np.ndarray


def adc_quantize(current: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Uniform per-column quantizer with clipping.

    Parameters
    ----------
    current : ndarray, shape (B, C)
        Column currents in amperes.
    lo, hi : ndarray, shape (C,)
        Range per column in amperes; a column with ``hi <= lo`` reads ``lo``.
    bits : int
        ``2**bits`` output levels from ``lo`` to ``hi``.

    Returns
    -------
    ndarray, shape (B, C)
        The quantized currents in amperes.

    Examples
    --------
    >>> adc_quantize(np.array([[0.26, 2.0, -1.0]]), np.zeros(3), np.ones(3), 2).tolist()
    [[0.3333333333333333, 1.0, 0.0]]
    """
    span = np.asarray(hi, float) - np.asarray(lo, float)
    step = np.where(span > 0, span, 1.0) / (2**bits - 1)
    clipped = np.clip(current, lo, hi)
    q = lo + np.rint((clipped - lo) / step) * step
    return np.where(span > 0, q, lo)


def fit_column_gain(measured: np.ndarray, ideal: np.ndarray, with_offset: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares per-column ``ideal ≈ gain · measured (+ offset)``.

    Parameters
    ----------
    measured, ideal : ndarray, shape (B, C)
        Read and ideal digit sums on calibration activations.
    with_offset : bool
        Fit an offset as well as a gain.

    Returns
    -------
    gain, offset : ndarray, shape (C,)
        Columns without signal keep gain 1 and offset 0.
    """
    if with_offset:
        mm, mi = measured.mean(axis=0), ideal.mean(axis=0)
        dm, di = measured - mm, ideal - mi
    else:
        mm = mi = np.zeros(measured.shape[1])
        dm, di = measured, ideal
    var = (dm * dm).sum(axis=0)
    ok = var > 1e-12 * np.maximum((ideal * ideal).sum(axis=0), 1e-300)
    gain = np.where(ok, (dm * di).sum(axis=0) / np.where(ok, var, 1.0), 1.0)
    offset = np.where(ok, mi - gain * mm, 0.0) if with_offset else np.zeros_like(gain)
    return gain, offset
