"""Every tolerance of the validation suite, in one place, with its reason.

A case passes when, for every quantity, ``error <= tolerance``. Errors are measured
as stated per entry; column-current errors are relative to the largest column
current of the case, so a column that carries almost nothing cannot fail by noise.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Tolerance", "TOLERANCES", "tolerance_for"]


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """An accepted error and why it is that size.

    Attributes
    ----------
    quantity : str
        What is compared (``column_currents``, ``node_voltages``...).
    model : str
        Device model family the tolerance applies to (``linear``, ``sinh``, ``1s1r``,
        ``1t1r``; see :data:`validation.cases.MODELS`).
    value : float
        Largest accepted error (relative, or volts for node voltages).
    kind : str
        ``"relative"`` or ``"absolute [V]"``.
    reason : str
        Why this value: what limits the agreement.
    """

    quantity: str
    model: str
    value: float
    kind: str
    reason: str


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    (t_.quantity, t_.model): t_
    for t_ in (
        Tolerance(
            "column_currents", "linear", 1e-9, "relative",
            "Both sides solve the same linear system in float64; ngspice's sparse LU and "
            "our solvers differ only by rounding amplified by the condition number "
            "(observed about 1e-12). 1e-9 leaves margin and still catches a 1 % error in "
            "one wire segment by several orders of magnitude.",
        ),
        Tolerance(
            "node_voltages", "linear", 1e-9, "absolute [V]",
            "Node voltages are O(V_in) ~ 0.1-1 V; float64 rounding in a 2MN-unknown "
            "solve stays below 1e-12 V here; 1e-9 V is the agreement we promise.",
        ),
        Tolerance(
            "closed_form", "linear", 1e-10, "relative",
            "The cosh closed form of docs/convention.md §3 is exact for the uniform line; the "
            "only error is float64 rounding of the solve and of cosh (below 1e-12).",
        ),
        Tolerance(
            "kcl", "linear", 1e-9, "relative",
            "Net current at every node divided by the total source current; a correct "
            "nodal solution leaves only rounding (about 1e-13).",
        ),
        Tolerance(
            "power_balance", "linear", 1e-9, "relative",
            "Power delivered by the sources equals power dissipated (Tellegen); only "
            "rounding separates them.",
        ),
        *(Tolerance(
            "column_currents", model, 1e-6, "relative",
            "Nonlinear cells: both sides iterate Newton to convergence; ngspice runs with "
            "tight .options (reltol 1e-12, abstol 1e-18 A, vntol 1e-15 V) and agrees to "
            "about 1e-11 (observed); 1e-6 is the agreement required of nonlinear cells.",
        ) for model in ("sinh", "1s1r", "1t1r")),
        *(Tolerance(
            "node_voltages", model, 1e-6, "absolute [V]",
            "Nonlinear cells: Newton-converged node voltages; observed ~1e-12 V.",
        ) for model in ("sinh", "1s1r", "1t1r")),
        *(Tolerance(
            "port_voltages", model, tol, "relative",
            "TIA output / sense-load voltages, relative to the case's largest; they are "
            "the column currents times a constant, so they inherit that tolerance.",
        ) for model, tol in (("linear", 1e-9), ("sinh", 1e-6), ("1s1r", 1e-6),
                             ("1t1r", 1e-6))),
        Tolerance(
            "ideal", "linear", 1e-14, "relative",
            "With every parasitic resistance zero the output is V·G; a summation-order "
            "difference of a few ulp is all that is allowed.",
        ),
    )
}
"""``(quantity, model) -> Tolerance``."""


def tolerance_for(quantity: str, model: str = "linear") -> float:
    """Return the accepted error of ``quantity`` for device ``model``.

    Raises
    ------
    KeyError
        If no tolerance is defined for that pair (the message lists the known ones).
    """
    try:
        return TOLERANCES[(quantity, model)].value
    except KeyError:
        known = ", ".join(f"{q}/{m}" for q, m in TOLERANCES)
        raise KeyError(
            f"no tolerance for {quantity!r} with model {model!r}; known: {known}"
        ) from None
