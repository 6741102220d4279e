"""Periphery models: the finite-gain op-amp transimpedance amplifier.

The default sense amplifier is ideal (virtual ground at exactly 0 V). A :class:`TIA`
with open-loop gain ``A`` and feedback resistor ``R_f`` holds its inverting input at
``v_in = I R_f / (1 + A)`` for an input current ``I`` and outputs
``v_out = -A v_in = -I R_f A / (1 + A)``: to the array it is exactly a resistor
``R_f / (1 + A)`` to ground (the nodal solvers use that), while the SPICE deck shows
the op-amp itself (a VCVS of gain ``A`` with ``R_f`` in feedback). See docs/models.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._validate import check_real
from .errors import SpecError

__all__ = ["SENSE_SIDES", "DRIVER_SIDES", "TIA"]

DRIVER_SIDES = ("left", "right", "both")
"""Where the row drivers sit: ``"left"`` (default), ``"right"`` or ``"both"`` ends."""

SENSE_SIDES = ("bottom", "top")
"""Where the sense amplifiers sit: ``"bottom"`` (default) or ``"top"`` of the columns."""


@dataclasses.dataclass(frozen=True)
class TIA:
    """Finite-gain op-amp transimpedance amplifier (one per column).

    Parameters
    ----------
    gain : float
        Open-loop voltage gain ``A`` (dimensionless), finite and > 0.
    r_feedback : float
        Feedback resistor ``R_f`` in ohms, finite and > 0.

    Examples
    --------
    >>> tia = TIA(gain=1e4, r_feedback=1e4)
    >>> round(tia.input_resistance, 6)
    0.9999
    >>> float(tia.output_voltage(1e-5))
    -0.09999000099990002
    """

    gain: float
    r_feedback: float

    def __post_init__(self) -> None:
        for name, unit in (("gain", "(dimensionless)"), ("r_feedback", "ohm")):
            value = check_real(f"TIA.{name}", getattr(self, name), error=SpecError, unit=unit)
            if value <= 0.0:
                raise SpecError(f"TIA.{name} must be finite and > 0 {unit}, got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def input_resistance(self) -> float:
        """``R_f / (1 + A)`` in ohms: the exact equivalent seen by the column."""
        return self.r_feedback / (1.0 + self.gain)

    def output_voltage(self, current: Any) -> np.ndarray:
        """Output voltage ``-I R_f A / (1 + A)`` in volts for input current(s) ``I`` (A)."""
        return -np.asarray(current, float) * self.r_feedback * (self.gain / (1.0 + self.gain))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict."""
        return {"gain": self.gain, "r_feedback": self.r_feedback}

    @classmethod
    def from_dict(cls, data: Any) -> TIA:
        """Inverse of :meth:`to_dict`; raises :class:`SpecError` for a bad dict."""
        if isinstance(data, TIA):
            return data
        if not isinstance(data, dict) or set(data) != {"gain", "r_feedback"}:
            raise SpecError(f"a TIA must be a JSON object with 'gain' and 'r_feedback', "
                            f"got {data!r}")
        return cls(**data)
