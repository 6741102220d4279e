"""Build a PySpice ``Circuit`` of a crossbar (PySpice is imported lazily, inside the call)."""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from xbar_circuit.spec import Crossbar

from .deck import GROUND, check_deck_text, deck_elements

__all__ = ["to_pyspice_circuit"]


def to_pyspice_circuit(crossbar: Crossbar, v_in: ArrayLike, *, title: str | None = None) -> Any:
    """Return a PySpice ``Circuit`` with exactly the elements of :func:`write_deck`.

    Element and node names are those of the deck (``Rcell_3_5`` between ``r_3_5``
    and ``c_3_5``...); values are plain floats in ohms and volts, which PySpice
    prints with full precision. Zero resistances are 0 V sources, as in the deck.
    The circuit has no analysis: append ``.op`` and ``.end`` to ``str(circuit)`` to
    run it as a deck, or use PySpice's simulator API.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : array_like, shape (M,)
        Row source voltages in volts.
    title : str, optional
        Circuit title: one line of printable text (:func:`check_deck_text`).

    Returns
    -------
    PySpice.Spice.Netlist.Circuit

    Raises
    ------
    DeckTextError
        If ``title`` holds a line break or control character.
    ImportError
        If PySpice is not installed.
    """
    m, n = crossbar.shape
    title = f"xbar-circuit crossbar {m}x{n}" if title is None else title
    check_deck_text(title, "the circuit title")
    if not crossbar.is_default_topology:
        raise NotImplementedError(
            "to_pyspice_circuit builds only the default circuit; write variant decks "
            "(device models, TIA, driver/sense sides, per-segment wires) with write_deck")
    from xbar_circuit._optional import import_optional

    Circuit = import_optional("PySpice.Spice.Netlist", "to_pyspice_circuit").Circuit

    circuit = Circuit(title)
    for _caption, elements in deck_elements(crossbar, v_in):
        for element in elements:
            neg = circuit.gnd if element.node_neg == GROUND else element.node_neg
            if element.kind == "V":
                circuit.V(element.name, element.node_pos, neg, element.value)
            else:
                circuit.R(element.name, element.node_pos, neg, element.value)
    return circuit
