"""Cell device models: each gives ``i(v)``, ``di/dv`` and an ngspice element.

Every model is an immutable, validated, JSON-serializable object. A cell (i, j) of a
:class:`~xbar_circuit.Crossbar` is the model evaluated with the cell's programmed
conductance ``g = G[i, j]`` (siemens) and its voltage ``v = V(r(i,j)) - V(c(i,j))``
(volts). Models (equations, parameters and units in ``docs/models.md``):

* :class:`Linear` — ``i = g v`` (the default cell);
* :class:`Sinh` — ``i = g sinh(k v) / k`` (RRAM-like; small-signal conductance ``g``);
* :class:`Selector` — ``i = i_0 sinh(u / v_0)``, an exponential threshold selector;
* :class:`AccessTransistor` — a level-1 square-law NMOS (``lambda = 0``) with its
  gate held ``v_gate`` volts above its source node;
* :class:`OneS1R` — selector in series with a memory element (Linear or Sinh);
* :class:`OneT1R` — access transistor in series with a memory element.

Series cells (1S1R, 1T1R) are two-terminal composites: the internal node voltage is
found per cell by a safeguarded one-dimensional Newton iteration and the composite's
derivative by implicit differentiation, ``di/dv = g1 g2 / (g1 + g2)``.

Examples
--------
>>> import numpy as np
>>> d = Sinh(k=3.0)
>>> float(d.conductance(np.array(0.0), np.array(1e-4)))  # small-signal = programmed g
0.0001
>>> Sinh.from_dict(d.to_dict()) == d
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from ._validate import check_real
from .errors import SpecError

__all__ = [
    "DEVICES",
    "AccessTransistor",
    "Device",
    "Linear",
    "OneS1R",
    "OneT1R",
    "Selector",
    "Sinh",
    "device_from_dict",
]

_INNER_MAX_ITER = 200


def _fmt(value: float) -> str:
    """Full-precision float text for a deck (shortest round-trip repr)."""
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(f"cannot write the non-finite value {value!r} into a SPICE deck")
    return repr(value)


def _positive(cls_name: str, name: str, value: Any, unit: str, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (or >= 0), else raise :class:`SpecError`."""
    value = check_real(f"{cls_name}.{name}", value, error=SpecError, unit=unit)
    if value < 0.0 or (value == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SpecError(f"{cls_name}.{name} must be finite and {bound} {unit}, got {value!r}")
    return value


def _real(cls_name: str, name: str, value: Any, unit: str) -> float:
    """Return ``value`` as a finite float, else raise :class:`SpecError`."""
    return check_real(f"{cls_name}.{name}", value, error=SpecError, unit=unit)


class Device:
    """Base class of the cell models (immutable dataclasses).

    Subclasses define :meth:`current_and_conductance`; ``kind`` names the model in
    JSON. ``v`` and ``g`` broadcast against each other (NumPy rules).
    """

    kind: ClassVar[str] = ""
    is_linear: ClassVar[bool] = False
    uses_gate: ClassVar[bool] = False

    def current_and_conductance(
        self, v: np.ndarray, g: np.ndarray, v_gate: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the cell current ``i`` (A) and ``di/dv`` (S) at cell voltage ``v`` (V).

        Parameters
        ----------
        v : ndarray
            Cell voltage V(row node) − V(column node), volts.
        g : ndarray
            Programmed conductance of the memory element, siemens (broadcast with v).
        v_gate : ndarray, optional
            Gate voltages in volts (only :class:`OneT1R` uses them).
        """
        raise NotImplementedError

    def current(self, v: Any, g: Any, v_gate: Any = None) -> np.ndarray:
        """Cell current ``i(v)`` in amperes (see :meth:`current_and_conductance`)."""
        return self.current_and_conductance(np.asarray(v, float), np.asarray(g, float),
                                            v_gate)[0]

    def conductance(self, v: Any, g: Any, v_gate: Any = None) -> np.ndarray:
        """Differential conductance ``di/dv`` in siemens."""
        return self.current_and_conductance(np.asarray(v, float), np.asarray(g, float),
                                            v_gate)[1]

    def spice_element(self, name: str, node_a: str, node_b: str, g: float,
                      v_gate: float | None = None) -> str:
        """ngspice line(s) of one cell from ``node_a`` (row) to ``node_b`` (column)."""
        raise NotImplementedError

    def spice_models(self) -> list[str]:
        """Model cards (``.model`` lines) the elements need (none by default)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``"type"`` and the parameters."""
        out: dict[str, Any] = {"type": self.kind}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            out[field.name] = value.to_dict() if isinstance(value, Device) else value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Device:
        """Build a device from :meth:`to_dict` output (see :func:`device_from_dict`)."""
        device = device_from_dict(data)
        if cls is not Device and not isinstance(device, cls):
            raise SpecError(f"expected a {cls.kind!r} device, got {device.kind!r}")
        return device

    def describe(self) -> str:
        """One-line description for deck headers and reprs."""
        return repr(self)


def _check_memory(cls_name: str, memory: Any) -> Device:
    if not isinstance(memory, (Linear, Sinh)):
        raise SpecError(f"{cls_name}.memory must be Linear() or Sinh(k), got {memory!r}")
    return memory


@dataclasses.dataclass(frozen=True)
class Linear(Device):
    """Linear conductance: ``i = g v`` (the default cell).

    Examples
    --------
    >>> float(Linear().current(0.2, 1e-4))
    2e-05
    """

    kind: ClassVar[str] = "linear"
    is_linear: ClassVar[bool] = True

    def current_and_conductance(self, v, g, v_gate=None):
        return g * v, np.broadcast_to(g, np.broadcast_shapes(np.shape(v), np.shape(g))).copy()

    def spice_element(self, name, node_a, node_b, g, v_gate=None):
        return f"R{name} {node_a} {node_b} {_fmt(1.0 / g)}"


@dataclasses.dataclass(frozen=True)
class Sinh(Device):
    """sinh-type nonlinear memory cell: ``i = g sinh(k v) / k``.

    Parameters
    ----------
    k : float
        Nonlinearity in 1/V, > 0. The small-signal conductance at ``v = 0`` is the
        programmed ``g``; ``k -> 0`` is the linear cell.
    """

    k: float = 1.0
    kind: ClassVar[str] = "sinh"

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _positive("Sinh", "k", self.k, "1/V"))

    def current_and_conductance(self, v, g, v_gate=None):
        kv = self.k * v
        return g * np.sinh(kv) / self.k, g * np.cosh(kv)

    def spice_element(self, name, node_a, node_b, g, v_gate=None):
        k = _fmt(self.k)
        return (f"B{name} {node_a} {node_b} "
                f"I={_fmt(g)}*sinh({k}*V({node_a},{node_b}))/{k}")


@dataclasses.dataclass(frozen=True)
class Selector(Device):
    """Exponential threshold selector: ``i = i_0 sinh(u / v_0)`` (ignores ``g``).

    Parameters
    ----------
    i_0 : float
        Current scale in amperes, > 0.
    v_0 : float
        Voltage scale in volts, > 0 (the current grows e-fold every ``v_0`` volts
        above a few ``v_0``). Small-signal conductance ``i_0 / v_0``.
    """

    i_0: float = 1e-6
    v_0: float = 0.05
    kind: ClassVar[str] = "selector"

    def __post_init__(self) -> None:
        object.__setattr__(self, "i_0", _positive("Selector", "i_0", self.i_0, "A"))
        object.__setattr__(self, "v_0", _positive("Selector", "v_0", self.v_0, "V"))

    def current_and_conductance(self, v, g=None, v_gate=None):
        x = v / self.v_0
        return self.i_0 * np.sinh(x), (self.i_0 / self.v_0) * np.cosh(x)

    def spice_element(self, name, node_a, node_b, g=0.0, v_gate=None):
        return (f"B{name} {node_a} {node_b} "
                f"I={_fmt(self.i_0)}*sinh(V({node_a},{node_b})/{_fmt(self.v_0)})")


@dataclasses.dataclass(frozen=True)
class AccessTransistor(Device):
    """Square-law (level-1, ``lambda = 0``) NMOS with its gate ``v_gate`` above its source.

    Drain at the first terminal, source at the second. With overdrive
    ``v_ov = v_gate - v_th`` and ``v = v_ds``:

    * ``v_ov > 0``: ``i = k_n (v_ov v - v²/2)`` for ``v < v_ov`` (triode, also for
      ``v < 0``, where drain and source swap), ``i = k_n v_ov² / 2`` for ``v >= v_ov``;
    * ``v_ov <= 0`` (off): ``i = 0`` for ``v >= v_ov``; ``i = -k_n (v - v_ov)² / 2`` below.

    Parameters
    ----------
    v_th : float
        Threshold voltage in volts (finite).
    k_n : float
        Transconductance factor ``KP·W/L`` in A/V², > 0. On-resistance at small
        ``v``: ``1 / (k_n v_ov)`` ohms.
    """

    v_th: float = 0.4
    k_n: float = 1e-3
    kind: ClassVar[str] = "transistor"
    uses_gate: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "v_th", _real("AccessTransistor", "v_th", self.v_th, "V"))
        object.__setattr__(self, "k_n", _positive("AccessTransistor", "k_n", self.k_n, "A/V^2"))

    def current_and_conductance(self, v, g=None, v_gate=None):
        v_ov = np.asarray(v_gate, float) - self.v_th
        kn = self.k_n
        on = v_ov > 0.0
        triode = on & (v < v_ov)
        i = np.where(triode, kn * (v_ov * v - 0.5 * v * v),
                     np.where(on, 0.5 * kn * v_ov * v_ov, 0.0))
        d = np.where(triode, kn * (v_ov - v), 0.0)
        rev = (~on) & (v < v_ov)
        i = np.where(rev, -0.5 * kn * (v - v_ov) ** 2, i)
        d = np.where(rev, kn * (v_ov - v), d)
        return i, d

    def spice_element(self, name, node_a, node_b, g=0.0, v_gate=None):
        gate = f"g_{name}"
        return (f"M{name} {node_a} {gate} {node_b} {node_b} nacc L=1 W=1\n"
                f"Vgs_{name} {gate} {node_b} DC {_fmt(v_gate)}")

    def spice_models(self) -> list[str]:
        return [f".model nacc nmos level=1 vto={_fmt(self.v_th)} kp={_fmt(self.k_n)} "
                "lambda=0 gamma=0 is=0 js=0 cbd=0 cbs=0 cj=0 cjsw=0"]


def _series(first: Device, memory: Device, v: np.ndarray, g: np.ndarray,
            v_gate: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``i_1(u) = i_2(v - u)`` per cell; return ``i``, ``di/dv`` and ``u`` (V).

    Safeguarded Newton on ``f(u) = i_1(u) - i_2(v - u)`` (monotone, ``f' = g_1 + g_2``)
    with the bracket ``[min(0, v), max(0, v)]`` narrowed at every step; a step leaving
    the bracket is replaced by bisection.
    """
    v, g = np.broadcast_arrays(np.asarray(v, float), np.asarray(g, float))
    gate = None if v_gate is None else np.broadcast_to(np.asarray(v_gate, float), v.shape)
    lo = np.minimum(v, 0.0)
    hi = np.maximum(v, 0.0)
    u = 0.5 * (lo + hi)
    i1, g1 = first.current_and_conductance(u, g, gate)
    i2, g2 = memory.current_and_conductance(v - u, g, gate)
    scale = np.abs(v) + 1e-300
    for _ in range(_INNER_MAX_ITER):
        f = i1 - i2
        hi = np.where(f > 0, u, hi)
        lo = np.where(f < 0, u, lo)
        deriv = g1 + g2
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(deriv > 0, f / deriv, np.inf)
        u_new = u - step
        bad = ~((u_new > lo) & (u_new < hi))
        u_new = np.where(bad, 0.5 * (lo + hi), u_new)
        done = (np.abs(u_new - u) <= 1e-15 * scale) | (f == 0.0)
        u = np.where(f == 0.0, u, u_new)
        i1, g1 = first.current_and_conductance(u, g, gate)
        i2, g2 = memory.current_and_conductance(v - u, g, gate)
        if done.all():
            break
    i = 0.5 * (i1 + i2)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = g1 + g2
        d = np.where(total > 0, g1 * g2 / np.where(total > 0, total, 1.0), 0.0)
    return i, d, u


@dataclasses.dataclass(frozen=True)
class OneS1R(Device):
    """Selector in series with a memory element (1S1R).

    Row node -> selector -> internal node ``x`` -> memory element -> column node.

    Parameters
    ----------
    selector : Selector
    memory : Linear or Sinh
        The programmed element (uses the cell's ``g``).
    """

    selector: Selector = dataclasses.field(default_factory=Selector)
    memory: Device = dataclasses.field(default_factory=Linear)
    kind: ClassVar[str] = "1s1r"

    def __post_init__(self) -> None:
        if not isinstance(self.selector, Selector):
            raise SpecError(f"OneS1R.selector must be a Selector, got {self.selector!r}")
        _check_memory("OneS1R", self.memory)

    def current_and_conductance(self, v, g, v_gate=None):
        i, d, _ = _series(self.selector, self.memory, v, g, None)
        return i, d

    def internal_voltage(self, v: Any, g: Any) -> np.ndarray:
        """Voltage across the selector (V(row) − V(x)), volts."""
        return _series(self.selector, self.memory, v, g, None)[2]

    def spice_element(self, name, node_a, node_b, g, v_gate=None):
        x = f"x_{name}"
        return (self.selector.spice_element(f"sel_{name}", node_a, x) + "\n"
                + self.memory.spice_element(name, x, node_b, g))

    @classmethod
    def _build(cls, data: dict[str, Any]) -> OneS1R:
        # __post_init__ refuses a part of the wrong kind with a SpecError.
        return cls(selector=device_from_dict(data.get("selector", {"type": "selector"})),  # type: ignore[arg-type]
                   memory=device_from_dict(data.get("memory", {"type": "linear"})))


@dataclasses.dataclass(frozen=True)
class OneT1R(Device):
    """Access transistor in series with a memory element (1T1R).

    Row node -> transistor (drain at the row node) -> internal node ``x`` -> memory
    element -> column node. The gate of every cell of row ``i`` is driven by the
    row's gate line at ``v_gate[i]`` volts *above the transistor's source node x*
    (solve option ``v_gate``, default :attr:`v_gate` for every row); a row with
    ``v_gate <= v_th`` is off.

    Parameters
    ----------
    transistor : AccessTransistor
    memory : Linear or Sinh
    v_gate : float
        Default gate-source voltage of every row, volts.
    """

    transistor: AccessTransistor = dataclasses.field(default_factory=AccessTransistor)
    memory: Device = dataclasses.field(default_factory=Linear)
    v_gate: float = 1.2
    kind: ClassVar[str] = "1t1r"
    uses_gate: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not isinstance(self.transistor, AccessTransistor):
            raise SpecError(f"OneT1R.transistor must be an AccessTransistor, "
                            f"got {self.transistor!r}")
        _check_memory("OneT1R", self.memory)
        object.__setattr__(self, "v_gate", _real("OneT1R", "v_gate", self.v_gate, "V"))

    def current_and_conductance(self, v, g, v_gate=None):
        gate = self.v_gate if v_gate is None else v_gate
        i, d, _ = _series(self.transistor, self.memory, v, g, gate)
        return i, d

    def spice_element(self, name, node_a, node_b, g, v_gate=None):
        gate = self.v_gate if v_gate is None else v_gate
        x = f"x_{name}"
        return (self.transistor.spice_element(name, node_a, x, v_gate=gate) + "\n"
                + self.memory.spice_element(f"mem_{name}", x, node_b, g))

    def spice_models(self) -> list[str]:
        return self.transistor.spice_models()

    @classmethod
    def _build(cls, data: dict[str, Any]) -> OneT1R:
        # __post_init__ refuses a part of the wrong kind with a SpecError.
        return cls(transistor=device_from_dict(data.get("transistor", {"type": "transistor"})),  # type: ignore[arg-type]
                   memory=device_from_dict(data.get("memory", {"type": "linear"})),
                   v_gate=data.get("v_gate", 1.2))


DEVICES: dict[str, type[Device]] = {
    cls.kind: cls for cls in (Linear, Sinh, Selector, AccessTransistor, OneS1R, OneT1R)
}
"""JSON ``"type"`` -> device class."""


def device_from_dict(data: Any) -> Device:
    """Build a device from :meth:`Device.to_dict` output.

    Raises
    ------
    SpecError
        For an unknown type, unknown or missing parameters, or invalid values.
    """
    if isinstance(data, Device):
        return data
    if not isinstance(data, dict) or "type" not in data:
        raise SpecError(f"a device must be a JSON object with a 'type', got {data!r}")
    cls = DEVICES.get(data["type"])
    if cls is None:
        raise SpecError(f"unknown device type {data['type']!r}; known: {', '.join(DEVICES)}")
    params = {k: v for k, v in data.items() if k != "type"}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(params) - names
    if unknown:
        raise SpecError(f"device {data['type']!r} has unknown parameter(s): "
                        f"{', '.join(sorted(unknown))}")
    if "_build" in cls.__dict__:
        return cls._build(params)  # type: ignore[attr-defined]
    return cls(**params)
