"""SPICE decks of a crossbar, following the circuit convention of docs/convention.md §1.

One deck describes one input vector and one ``.op`` analysis. The same element list
feeds :func:`write_deck` (plain text for ngspice) and
:func:`xbar_circuit.netlists.to_pyspice_circuit` (a PySpice ``Circuit``), so both
describe exactly the same circuit.

Node names (ngspice lower-cases everything):

============  =====================================================================
``in_i``      ideal source terminal of row ``i`` (``Vin_i`` between it and ground)
``drv_i``     driver output of row ``i`` (after ``r_driver``)
``r_i_j``     row-wire node of cell (i, j)
``c_i_j``     column-wire node of cell (i, j)
``sns_j``     sense node of column ``j`` (after the last column segment)
``vg_j``      virtual ground of column ``j``'s transimpedance amplifier
============  =====================================================================

Variant decks (any non-default option of the spec; docs/models.md) add ``drvr_i``
(right driver output), ``tin_j`` / ``out_j`` (finite-gain TIA input after the ammeter /
op-amp output), ``ld_j`` (sense-load node), ``x_cell_i_j`` (internal node of a 1S1R or
1T1R cell) and ``g_cell_i_j`` (access-transistor gate); cells are written by the
device model (``Rcell``/``Bcell``/``Bsel_cell``/``Mcell``...), the op-amp as
``Eopa_j`` with ``Rf_j``, and nonlinear decks end with the ``.options`` line of
:func:`nonlinear_options`.

Element names: ``Vin_i`` (row source), ``Rdrv_i`` (driver resistance),
``Rrow_i_j`` (row segment ending at ``r_i_j``), ``Rcell_i_j`` (the cell, 1/G ohm),
``Rcol_i_j`` (column segment leaving ``c_i_j`` downwards), ``Rsns_j`` (sense
resistance), ``Vtia_j`` (0 V source from ``vg_j`` to ground: the ideal TIA's virtual
ground and the ammeter of column ``j``).

A zero resistance is written as a 0 V voltage source with the same name but a ``V``
prefix (``Vdrv_i``, ``Vrow_i_j``, ``Vcol_i_j``, ``Vsns_j``): an exact short in modified
nodal analysis. A 0-ohm resistor is *not* exact in ngspice (39 replaces it by
1 milliohm and warns), so it is never written.

Sign of the column current: SPICE reports a voltage source's branch current as
the current flowing *into* its positive terminal and through the source. ``Vtia_j``
has its positive terminal at ``vg_j``, so ``I(Vtia_j)`` is positive when current flows
from the array into the virtual ground: exactly the convention of ``I[j]``.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike

from xbar_circuit._version import __version__
from xbar_circuit.errors import InputError, SpecError
from xbar_circuit.spec import Crossbar

__all__ = [
    "DeckTextError",
    "GROUND",
    "KLU_OPTION",
    "NONLINEAR_RELTOL",
    "NONLINEAR_SCALE_TOL",
    "nonlinear_options",
    "Element",
    "ammeter_name",
    "col_node",
    "deck_elements",
    "driver_node",
    "format_value",
    "row_node",
    "sense_node",
    "source_name",
    "source_node",
    "check_deck",
    "check_deck_text",
    "vground_node",
    "write_deck",
    "write_decks",
]

GROUND = "0"
"""SPICE's ground node."""

NONLINEAR_RELTOL = 1e-12
"""Relative convergence tolerance of nonlinear decks (ngspice's default 1e-3 would only
give about 1e-4 agreement with a Newton solver converged to rounding level)."""

NONLINEAR_SCALE_TOL = 1e-12
"""``abstol`` and ``vntol`` of nonlinear decks as a fraction of the circuit's current
and voltage scale (:func:`nonlinear_options`)."""

KLU_OPTION = ".options klu pivrel=0.5"
"""Deck line that selects ngspice's KLU sparse solver (ngspice 40 and later, when built
with it; older builds ignore ``klu``). ``pivrel`` is KLU's partial-pivoting threshold:
with ngspice's default (1e-3) KLU keeps too many small pivots on a crossbar's matrix
(1-ohm wires beside 10-kilohm cells) and column currents drift by about 3e-11 relative
at 64x64 to 128x128; 0.5 brings them to about 1e-13, as Sparse 1.3 gets, at the same
speed (measured with ngspice 46)."""


def nonlinear_options(crossbar: Crossbar, v_in: ArrayLike,
                      v_gate: ArrayLike | None = None) -> str:
    """The ``.options`` line of a nonlinear deck, with tolerances ngspice can meet.

    ngspice accepts a Newton iterate when every node voltage moved by less than
    ``reltol·|V| + vntol`` and every branch current by less than ``reltol·|I| + abstol``.
    A branch that carries little current next to one that carries a lot only knows its
    current to about machine epsilon times the large one, so an ``abstol`` below that
    rounding level can never be met and ngspice falls into gmin and source stepping
    (and may fail). The floors are therefore set from the circuit itself:

    * voltage scale ``V_s`` = the largest ``|source or gate voltage|`` (V);
    * current scale ``I_s = V_s · max(max_j Σ_i G[i, j], max_i Σ_j G[i, j])`` (A), the
      largest line current the cells could carry at their nominal conductance;
    * ``abstol = 1e-12 · I_s``, ``vntol = 1e-12 · V_s``, ``reltol = 1e-12``.

    That is about 4500 times the rounding level (2.2e-16 relative) and still six orders
    of magnitude below the 1e-6 agreement the validation asks for.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : array_like, shape (M,)
        Row source voltages in volts.
    v_gate : float or array_like (M,), optional
        Gate-line voltages of 1T1R rows, volts.

    Returns
    -------
    str
        ``.options reltol=... abstol=... vntol=... gmin=1e-20 itl1=500``.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> from xbar_circuit.devices import Sinh
    >>> xbar = Crossbar(np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0, device=Sinh(k=2.0))
    >>> nonlinear_options(xbar, [0.5, 0.25])
    '.options reltol=1e-12 abstol=1e-16 vntol=5e-13 gmin=1e-20 itl1=500'
    """
    volts = np.abs(np.asarray(v_in, dtype=np.float64))
    v_scale = float(volts.max()) if volts.size else 0.0
    gates = crossbar.gate_voltages(v_gate)
    if gates is not None and gates.size:
        v_scale = max(v_scale, float(np.abs(gates).max()))
    g = crossbar.conductance
    g_line = max(float(g.sum(axis=0).max()), float(g.sum(axis=1).max())) if g.size else 0.0
    # A circuit with no drive at all still gets finite, meetable floors.
    v_scale = v_scale if v_scale > 0 else 1.0
    i_scale = v_scale * g_line if g_line > 0 else v_scale * 1e-6
    abstol = float(f"{NONLINEAR_SCALE_TOL * i_scale:.3g}")
    vntol = float(f"{NONLINEAR_SCALE_TOL * v_scale:.3g}")
    return (f".options reltol={NONLINEAR_RELTOL:g} abstol={abstol:g} vntol={vntol:g} "
            "gmin=1e-20 itl1=500")


# --------------------------------------------------------------- text that reaches a deck
class DeckTextError(InputError):
    """A string that would be written into a SPICE deck holds a line break or control
    character.

    ngspice's control language (``.control`` ... ``.endc``) runs shell commands, and
    PySpice's shared mode splits a deck with :meth:`str.splitlines`, so any character
    that starts a new line there could smuggle a command into a title or a name.

    Attributes
    ----------
    what : str
        Which string was refused (e.g. ``"the deck title"``).
    position : int
        Index of the first refused character.
    """

    def __init__(self, message: str, what: str, position: int) -> None:
        super().__init__(message)
        self.what = what
        self.position = position


# Exactly the characters of Unicode categories Cc (C0 and C1 controls, DEL), Zl (U+2028)
# and Zp (U+2029): every separator str.splitlines() knows (\n \r \v \f \x1c \x1d \x1e \x85
# \u2028 \u2029) is among them, and so is every other control character, tab included.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same, except the line feed that separates the lines of a whole deck.
_REFUSED_IN_DECK = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NAMES = {
    "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "CHARACTER TABULATION",
    "\v": "LINE TABULATION", "\f": "FORM FEED", "\x1c": "FILE SEPARATOR",
    "\x1d": "GROUP SEPARATOR", "\x1e": "RECORD SEPARATOR", "\x85": "NEXT LINE",
}


def _refusal(what: str, text: str, position: int, where: str = "") -> DeckTextError:
    char = text[position]
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "control character")
    return DeckTextError(
        f"{what} must be one line of printable text: character {position}{where} is "
        f"U+{ord(char):04X} ({name}), a line break or control character that could "
        f"start a new deck line", what, position)


def _require_str(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise DeckTextError(f"{what} must be a string, got {type(value).__name__}", what, 0)


def check_deck_text(text: str, what: str = "text") -> str:
    """Return ``text`` if it can stand on one deck line; raise :class:`DeckTextError` if not.

    The one check every string written into a deck passes (titles, element and node
    names, comments): it refuses every line separator :meth:`str.splitlines` knows
    (``\\n \\r \\v \\f \\x1c \\x1d \\x1e \\x85 \\u2028 \\u2029``) and every other
    control character (Unicode categories Cc, Zl, Zp).

    Parameters
    ----------
    text : str
        The string that would be written.
    what : str
        What it is, for the error message.

    Returns
    -------
    str
        ``text`` unchanged.

    Raises
    ------
    DeckTextError
        If ``text`` is not a ``str`` or holds a refused character.

    Examples
    --------
    >>> check_deck_text("xbar 4x4 input 0", "the deck title")
    'xbar 4x4 input 0'
    >>> check_deck_text("t\\u2028.control", "the deck title")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xbar_circuit.netlists.deck.DeckTextError: the deck title must be ... U+2028 (LINE SEPARATOR)...
    """
    _require_str(text, what)
    match = _REFUSED.search(text)
    if match:
        raise _refusal(what, text, match.start())
    return text


def check_deck(deck: str, what: str = "the deck") -> str:
    """Return a whole deck if none of its lines holds a refused character.

    Lines are separated by ``\\n`` (a ``\\r\\n`` pair counts as one separator); any other
    character refused by :func:`check_deck_text` raises :class:`DeckTextError`, which
    names the line. ngspice and PySpice's shared mode then see the same lines.

    Parameters
    ----------
    deck : str
        The netlist text.
    what : str
        What it is, for the error message.

    Returns
    -------
    str
        ``deck`` unchanged.
    """
    _require_str(deck, what)
    text = deck.replace("\r\n", "\n")
    match = _REFUSED_IN_DECK.search(text)
    if match:
        start = text.rfind("\n", 0, match.start()) + 1
        line = text.count("\n", 0, match.start()) + 1
        raise _refusal(what, text[start:], match.start() - start, f" of line {line}")
    return deck


# --------------------------------------------------------------------- node names
def source_node(i: int) -> str:
    """Ideal source terminal of row ``i``: ``in_i``."""
    return f"in_{i}"


def driver_node(i: int) -> str:
    """Driver output node of row ``i`` (after ``r_driver``): ``drv_i``."""
    return f"drv_{i}"


def row_node(i: int, j: int) -> str:
    """Row-wire node of cell (i, j): ``r_i_j``."""
    return f"r_{i}_{j}"


def col_node(i: int, j: int) -> str:
    """Column-wire node of cell (i, j): ``c_i_j``."""
    return f"c_{i}_{j}"


def sense_node(j: int) -> str:
    """Sense node of column ``j`` (after the last column segment): ``sns_j``."""
    return f"sns_{j}"


def vground_node(j: int) -> str:
    """Virtual-ground node of column ``j``'s transimpedance amplifier: ``vg_j``."""
    return f"vg_{j}"


def source_name(i: int) -> str:
    """Element name of row ``i``'s ideal voltage source: ``Vin_i``."""
    return f"Vin_{i}"


def ammeter_name(j: int) -> str:
    """Element name of column ``j``'s 0 V virtual-ground source (ammeter): ``Vtia_j``."""
    return f"Vtia_{j}"


def format_value(value: float) -> str:
    """Format a float for a deck with full precision (shortest round-trip repr).

    Parameters
    ----------
    value : float
        A finite value in SI units (ohm or volt).

    Returns
    -------
    str
        ``repr(float(value))``, e.g. ``'10000.0'`` or ``'1e-06'``; parsing it back
        gives the same double.

    Examples
    --------
    >>> format_value(1 / 3)
    '0.3333333333333333'
    """
    value = float(value)
    if not np.isfinite(value):
        raise SpecError(f"cannot write the non-finite value {value!r} into a SPICE deck")
    return repr(value)


# ----------------------------------------------------------------------- elements
@dataclasses.dataclass(frozen=True)
class Element:
    """One two-terminal element of a deck.

    Attributes
    ----------
    kind : {"R", "V", "raw"}
        Resistor (``value`` in ohms), DC voltage source (``value`` in volts,
        positive terminal ``node_pos``), or ``"raw"``: ready-made deck line(s) in
        ``text`` (B-sources, MOSFETs, VCVS op-amps of the variant decks).
    name : str
        Element name without the kind letter, e.g. ``"cell_3_5"`` for ``Rcell_3_5``.
    node_pos, node_neg : str
        The two nodes; for a source, the positive and negative terminal.
    value : float
        Resistance in ohms or voltage in volts.
    """

    kind: str
    name: str
    node_pos: str
    node_neg: str
    value: float
    text: str = ""

    @property
    def full_name(self) -> str:
        """SPICE element name with its kind letter, e.g. ``"Rcell_3_5"``."""
        return self.name if self.kind == "raw" else self.kind + self.name

    def line(self) -> str:
        """The deck line of this element."""
        if self.kind == "raw":
            return self.text
        if self.kind == "V":
            return f"{self.full_name} {self.node_pos} {self.node_neg} DC {format_value(self.value)}"
        return f"{self.full_name} {self.node_pos} {self.node_neg} {format_value(self.value)}"


def _wire(name: str, a: str, b: str, resistance: float) -> Element:
    """A resistor of ``resistance`` ohms, or an exact 0 V short when it is zero."""
    if resistance == 0.0:
        return Element("V", name, a, b, 0.0)
    return Element("R", name, a, b, resistance)


def _check_vector(crossbar: Crossbar, v_in: ArrayLike) -> np.ndarray:
    """Return ``v_in`` as a finite float64 (M,) array or raise :class:`InputError`."""
    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
    try:
        v = np.asarray(v_in, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"v_in must be an array of volts: {exc}") from None
    if v.shape != (crossbar.n_rows,):
        raise InputError(
            f"a deck takes one input vector of shape ({crossbar.n_rows},) volts, got shape "
            f"{v.shape}; use write_decks for a batch"
        )
    if not np.all(np.isfinite(v)):
        i = int(np.flatnonzero(~np.isfinite(v))[0])
        raise InputError(f"v_in must be finite; v_in[{i}] = {v[i]!r}")
    return v


def _resistance_note(value: float) -> str:
    return "zero: 0 V sources, exact shorts" if value == 0.0 else "resistors"


def _sources_group(v: np.ndarray) -> tuple[str, list[Element]]:
    """The ideal row sources ``Vin_i`` at the volts of ``v``."""
    return ("row sources V[i] (ideal, volts)",
            [Element("V", f"in_{i}", source_node(i), GROUND, float(v[i]))
             for i in range(v.shape[0])])


def _ideal_tia_group(n: int) -> tuple[str, list[Element]]:
    """The 0 V sources ``Vtia_j`` holding each virtual ground (the column ammeters)."""
    return ("virtual grounds of the ideal TIAs: 0 V sources vg_j -> ground (ammeters)",
            [Element("V", f"tia_{j}", vground_node(j), GROUND, 0.0) for j in range(n)])


def deck_elements(
    crossbar: Crossbar, v_in: ArrayLike, v_gate: ArrayLike | None = None
) -> list[tuple[str, list[Element]]]:
    """Return the deck's elements for one input vector, in groups with a caption.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : array_like, shape (M,)
        Row source voltages in volts.
    v_gate : float or array_like (M,), optional
        Gate-line voltages of 1T1R rows, volts (default: the device's ``v_gate``).

    Returns
    -------
    list of (str, list of Element)
        ``(caption, elements)`` pairs in deck order: sources, drivers, row wires,
        cells, column wires, sense resistances, virtual grounds.
    """
    v = _check_vector(crossbar, v_in)
    if not crossbar.is_default_topology:
        return _variant_elements(crossbar, v, v_gate)
    m, n = crossbar.shape
    g = crossbar.conductance
    groups: list[tuple[str, list[Element]]] = []
    groups.append(_sources_group(v))
    groups.append((
        f"driver output resistance r_driver = {format_value(crossbar.r_driver)} ohm "
        f"({_resistance_note(crossbar.r_driver)})",
        [_wire(f"drv_{i}", source_node(i), driver_node(i), crossbar.r_driver) for i in range(m)],
    ))
    rows: list[Element] = []
    for i in range(m):
        previous = driver_node(i)
        for j in range(n):
            rows.append(_wire(f"row_{i}_{j}", previous, row_node(i, j), float(crossbar.r_row)))
            previous = row_node(i, j)
    groups.append((
        f"row wires: drv_i -> r_i_0 -> ... -> r_i_{n - 1}, N = {n} segments of "
        f"r_row = {format_value(float(crossbar.r_row))} ohm "
        f"({_resistance_note(float(crossbar.r_row))})",
        rows,
    ))
    cells: list[Element] = []
    for i in range(m):
        for j in range(n):
            conductance = float(g[i, j])
            if conductance == 0.0:
                continue
            resistance = 1.0 / conductance
            if not np.isfinite(resistance):
                raise SpecError(
                    f"conductance[{i}, {j}] = {conductance!r} S is too small to write as a "
                    f"resistor (1/G overflows); use 0 for an open cell"
                )
            cells.append(Element("R", f"cell_{i}_{j}", row_node(i, j), col_node(i, j), resistance))
    n_open = m * n - len(cells)
    groups.append((
        f"cells: 1/G[i,j] ohm from r_i_j to c_i_j ({len(cells)} written, "
        f"{n_open} open with G = 0 omitted)",
        cells,
    ))
    cols: list[Element] = []
    for j in range(n):
        for i in range(m):
            below = col_node(i + 1, j) if i + 1 < m else sense_node(j)
            cols.append(_wire(f"col_{i}_{j}", col_node(i, j), below, float(crossbar.r_col)))
    groups.append((
        f"column wires: c_0_j -> ... -> c_{m - 1}_j -> sns_j, M = {m} segments of "
        f"r_col = {format_value(float(crossbar.r_col))} ohm "
        f"({_resistance_note(float(crossbar.r_col))})",
        cols,
    ))
    groups.append((
        f"sense resistance r_sense = {format_value(crossbar.r_sense)} ohm, sns_j -> vg_j "
        f"({_resistance_note(crossbar.r_sense)})",
        [_wire(f"sns_{j}", sense_node(j), vground_node(j), crossbar.r_sense) for j in range(n)],
    ))
    groups.append(_ideal_tia_group(n))
    return groups


def _variant_header(crossbar: Crossbar) -> list[str]:
    lines = [
        "* VARIANT of the default circuit (spec version 2; topology in docs/models.md):",
        f"*   device = {crossbar.device!r}",
        f"*   drivers at the {crossbar.driver_side} end(s) of the rows; sense amplifiers at "
        f"the {crossbar.sense_side} of the columns",
    ]
    if isinstance(crossbar.r_row, np.ndarray) or isinstance(crossbar.r_col, np.ndarray):
        lines.append("*   per-segment wire resistances (values above are placeholders when "
                     "arrays: see each Rrow/Rcol)")
    if crossbar.tia is not None:
        lines.append(f"*   finite-gain TIA per column: open-loop gain A = "
                     f"{format_value(crossbar.tia.gain)}, R_f = "
                     f"{format_value(crossbar.tia.r_feedback)} ohm; output node out_j")
    if crossbar.sense_load is not None:
        lines.append(f"*   plain sense resistor to ground: {format_value(crossbar.sense_load)} "
                     "ohm; sense voltage at node ld_j")
    return lines


def _raw(name: str, text: str) -> Element:
    return Element("raw", name, "", "", 0.0, text)


def _variant_elements(crossbar: Crossbar, v: np.ndarray,
                      v_gate: ArrayLike | None) -> list[tuple[str, list[Element]]]:
    """Element groups of a variant topology (docs/models.md), one input vector."""
    m, n = crossbar.shape
    g = crossbar.conductance
    seg_r = crossbar.row_segments()
    seg_c = crossbar.col_segments()
    side = crossbar.driver_side
    gates = crossbar.gate_voltages(v_gate)
    if side == "both" and crossbar.r_driver == 0.0:
        loops = np.flatnonzero(np.all(seg_r == 0.0, axis=1))
        if loops.size:
            raise SpecError(
                f"row {int(loops[0])} has drivers on both ends and zero resistance all along "
                "(r_driver = 0 and every segment 0 ohm): a loop of 0 V sources, which SPICE "
                "cannot solve; give r_driver > 0 or a non-zero segment")
    groups: list[tuple[str, list[Element]]] = []
    groups.append(_sources_group(v))
    drivers: list[Element] = []
    if side in ("left", "both"):
        drivers += [_wire(f"drv_{i}", source_node(i), driver_node(i), crossbar.r_driver)
                    for i in range(m)]
    if side in ("right", "both"):
        drivers += [_wire(f"drvr_{i}", source_node(i), f"drvr_{i}", crossbar.r_driver)
                    for i in range(m)]
    groups.append((f"driver output resistance r_driver = {format_value(crossbar.r_driver)} ohm "
                   f"at the {side} end(s): drv_i (left), drvr_i (right)", drivers))
    rows: list[Element] = []
    for i in range(m):
        if side == "right":
            for j in range(n):
                nxt = row_node(i, j + 1) if j + 1 < n else f"drvr_{i}"
                rows.append(_wire(f"row_{i}_{j}", row_node(i, j), nxt, float(seg_r[i, j])))
        else:
            previous = driver_node(i)
            for j in range(n):
                rows.append(_wire(f"row_{i}_{j}", previous, row_node(i, j), float(seg_r[i, j])))
                previous = row_node(i, j)
            if side == "both":
                rows.append(_wire(f"row_{i}_{n}", previous, f"drvr_{i}", float(seg_r[i, n])))
    caption = {"left": "drv_i -> r_i_0 -> ... -> r_i_{N-1}",
               "right": "r_i_0 -> ... -> r_i_{N-1} -> drvr_i",
               "both": "drv_i -> r_i_0 -> ... -> r_i_{N-1} -> drvr_i (N+1 segments)"}[side]
    groups.append((f"row wires: {caption}", rows))
    cells: list[Element] = []
    device = crossbar.device
    for i in range(m):
        for j in range(n):
            conductance = float(g[i, j])
            if conductance == 0.0:
                continue
            if not np.isfinite(1.0 / conductance):
                raise SpecError(f"conductance[{i}, {j}] = {conductance!r} S is too small to "
                                "write (1/G overflows); use 0 for an open cell")
            text = device.spice_element(f"cell_{i}_{j}", row_node(i, j), col_node(i, j),
                                        conductance,
                                        None if gates is None else float(gates[i]))
            cells.append(_raw(f"cell_{i}_{j}", text))
    groups.append((f"cells: {device!r} from r_i_j to c_i_j ({len(cells)} written, "
                   f"{m * n - len(cells)} open with G = 0 omitted)", cells))
    cols: list[Element] = []
    for j in range(n):
        for i in range(m):
            if crossbar.sense_side == "bottom":
                nxt = col_node(i + 1, j) if i + 1 < m else sense_node(j)
            else:
                nxt = col_node(i - 1, j) if i > 0 else sense_node(j)
            cols.append(_wire(f"col_{i}_{j}", col_node(i, j), nxt, float(seg_c[i, j])))
    arrow = ("c_0_j -> ... -> c_{M-1}_j -> sns_j" if crossbar.sense_side == "bottom"
             else "c_{M-1}_j -> ... -> c_0_j -> sns_j (sense at the top)")
    groups.append((f"column wires: {arrow}", cols))
    groups.append((
        f"sense resistance r_sense = {format_value(crossbar.r_sense)} ohm, sns_j -> vg_j",
        [_wire(f"sns_{j}", sense_node(j), vground_node(j), crossbar.r_sense) for j in range(n)],
    ))
    port: list[Element] = []
    if crossbar.tia is not None:
        gain = format_value(crossbar.tia.gain)
        r_f = format_value(crossbar.tia.r_feedback)
        for j in range(n):
            port.append(Element("V", f"tia_{j}", vground_node(j), f"tin_{j}", 0.0))
            port.append(Element("R", f"f_{j}", f"tin_{j}", f"out_{j}", crossbar.tia.r_feedback))
            port.append(_raw(f"Eopa_{j}", f"Eopa_{j} out_{j} 0 0 tin_{j} {gain}"))
        caption = (f"finite-gain TIAs: ammeter Vtia_j vg_j -> tin_j, op-amp Eopa_j "
                   f"(V(out_j) = {gain} * (0 - V(tin_j))), feedback Rf_j = {r_f} ohm")
    elif crossbar.sense_load is not None:
        for j in range(n):
            port.append(Element("V", f"tia_{j}", vground_node(j), f"ld_{j}", 0.0))
            port.append(Element("R", f"load_{j}", f"ld_{j}", GROUND, crossbar.sense_load))
        caption = "sense loads: ammeter Vtia_j vg_j -> ld_j, Rload_j ld_j -> ground"
    else:
        caption, port = _ideal_tia_group(n)
    groups.append((caption, port))
    return groups


# --------------------------------------------------------------------------- decks
def _default_title(crossbar: Crossbar) -> str:
    m, n = crossbar.shape
    return f"xbar-circuit crossbar {m}x{n} operating point"


def _wire_text(value: float | np.ndarray) -> str:
    if isinstance(value, np.ndarray):
        return (f"per-segment array {value.shape[0]}x{value.shape[1]} in "
                f"[{format_value(value.min())}, {format_value(value.max())}]")
    return format_value(value)


def _header(crossbar: Crossbar, title: str) -> list[str]:
    m, n = crossbar.shape
    g = crossbar.conductance
    positive = g[g > 0]
    g_range = (
        f"[{format_value(positive.min())}, {format_value(positive.max())}] S over the "
        f"{positive.size} non-zero cells"
        if positive.size
        else "no non-zero cell"
    )
    return [
        title,
        f"* Written by xbar-circuit {__version__} (xbar_circuit.netlists.write_deck).",
        f"* Array: M = {m} rows (word lines) x N = {n} columns (bit lines).",
        f"* r_row    = {_wire_text(crossbar.r_row)} ohm per row segment",
        f"* r_col    = {_wire_text(crossbar.r_col)} ohm per column segment",
        f"* r_driver = {format_value(crossbar.r_driver)} ohm",
        f"* r_sense  = {format_value(crossbar.r_sense)} ohm",
        f"* G range  = {g_range}; G = 0 is an open cell (omitted)",
        "* Convention (docs/convention.md, section 1): Vin_i -> r_driver -> drv_i "
        "-> N row segments",
        "*   -> r_i_0 ... r_i_{N-1}; cell (i,j) = 1/G from r_i_j to c_i_j; column c_0_j ...",
        "*   c_{M-1}_j -> last segment -> sns_j -> r_sense -> vg_j, held at 0 V by Vtia_j.",
        "* Zero resistances are 0 V sources (exact shorts): ngspice turns a 0-ohm resistor",
        "*   into 1 milliohm. Values are written with full double precision.",
    ]


def _body_lines(groups: Sequence[tuple[str, list[Element]]]) -> list[str]:
    lines: list[str] = []
    for caption, elements in groups:
        lines.append("")
        lines.append(f"* --- {caption}")
        lines.extend(element.line() for element in elements)
    return lines


def write_deck(crossbar: Crossbar, v_in: ArrayLike, *, title: str | None = None,
               v_gate: ArrayLike | None = None, klu: bool = False) -> str:
    """Write the SPICE deck (``.op`` analysis) of ``crossbar`` for one input vector.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : array_like, shape (M,)
        Row source voltages in volts.
    title : str, optional
        First line of the deck (SPICE's title line); one line of text.
    v_gate : float or array_like (M,), optional
        Gate-line voltages of 1T1R rows, volts.
    klu : bool
        Add :data:`KLU_OPTION` (``.options klu pivrel=0.5``) before ``.op``, so that an ngspice
        built with KLU uses it (the ``"ngspice"`` backend sets this when the installed
        ngspice has KLU).

    Returns
    -------
    str
        The deck, newline-terminated, ending with ``.op`` and ``.end``. Decks of
        the default circuit have no variant lines; variant decks add their topology to
        the header, the device's ``.model`` cards and, for nonlinear cells, tight
        ``.options`` (:func:`nonlinear_options`).

    Raises
    ------
    InputError
        If ``v_in`` is not a finite vector of M volts.
    DeckTextError
        If ``title`` (or any generated line) holds a line break or control character.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> from xbar_circuit.netlists import write_deck
    >>> deck = write_deck(Crossbar(np.full((1, 1), 1e-4), r_row=1.0, r_col=1.0), [0.2])
    >>> [line for line in deck.splitlines() if line.startswith("Rcell")]
    ['Rcell_0_0 r_0_0 c_0_0 10000.0']
    """
    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
    title = _default_title(crossbar) if title is None else title
    check_deck_text(title, "the deck title")
    lines = _header(crossbar, title)
    if not crossbar.is_default_topology:
        lines.extend(_variant_header(crossbar))
    lines.extend(_body_lines(deck_elements(crossbar, v_in, v_gate)))
    if not crossbar.is_default_topology:
        models = crossbar.device.spice_models()
        if models:
            lines.extend(["", "* --- device models", *models])
        if not crossbar.is_linear:
            lines.extend(["", "* --- tolerances from the circuit's voltage and current scale "
                          "(reltol, abstol in A, vntol in V)",
                          nonlinear_options(crossbar, v_in, v_gate)])
    if klu:
        lines.extend(["", "* --- sparse matrix solver: KLU (ngspice >= 40), pivoting threshold "
                      "0.5 for full accuracy", KLU_OPTION])
    lines.extend(["", ".op", ".end", ""])
    # Device cards, captions and names are generated, but they carry user values:
    # the whole deck passes the same check as the title before anyone runs it.
    return check_deck("\n".join(lines), "the generated deck")


def write_decks(
    crossbar: Crossbar, v_batch: ArrayLike, *, title: str | None = None, klu: bool = False
) -> Iterator[str]:
    """Yield one deck per input vector of a batch (see :func:`write_deck`).

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_batch : array_like, shape (B, M)
        Row source voltages in volts, one row per deck.
    title : str, optional
        Title line; ``{b}`` in it is replaced by the batch index.
    klu : bool
        Ask for ngspice's KLU solver (see :func:`write_deck`).

    Yields
    ------
    str
        The deck of input vector ``b``, for ``b = 0 .. B-1``.
    """
    v = np.asarray(v_batch, dtype=np.float64)
    if v.ndim != 2:
        raise InputError(f"v_batch must have shape (B, M), got shape {v.shape}")
    for b in range(v.shape[0]):
        yield write_deck(
            crossbar, v[b], title=None if title is None else title.replace("{b}", str(b)),
            klu=klu,
        )
