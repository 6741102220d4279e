"""Nonlinear decks converge by plain Newton in ngspice: no gmin or source stepping.

Every nonlinear corpus deck, and the 16x16 1S1R array that ngspice could not finish
with ``abstol=1e-18``, runs through the installed ngspice with the tolerances of
:func:`xbar_circuit.netlists.nonlinear_options`; ngspice's output must not mention
gmin or source stepping (its messages: "Starting dynamic gmin stepping", "Trying
gmin = ...", "Starting source stepping", "Supplies reduced to ..."). Decks up to 32x32
also run with the Sparse 1.3 solver, where the old tolerances failed. Column currents
agree with the independent ``"reference"`` Newton solver to 1e-9 relative (the
validation tolerance is 1e-6; observed about 1e-12).
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.backends.ngspice import arrays_from_values
from xbar_circuit.devices import Linear, OneS1R, Selector
from xbar_circuit.errors import NgspiceError
from xbar_circuit.netlists import KLU_OPTION, run_deck, write_deck
from xbar_circuit.validation.cases import CASES
from xbar_circuit.validation.corpus import REFERENCE_DIR

pytestmark = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")

STEPPING = re.compile(r"gmin\s+stepping|source\s+stepping|trying\s+gmin|supplies\s+reduced",
                      re.IGNORECASE)
NONLINEAR = [c for c in CASES if c.model != "linear"]


def _reproducer() -> tuple[Crossbar, np.ndarray]:
    crossbar = Crossbar.random(16, 16, r_row=2.0, r_col=2.0, r_driver=20.0, r_sense=5.0,
                               g_off=1e-5, g_on=1e-4, seed=0,
                               device=OneS1R(selector=Selector(1e-6, 0.05), memory=Linear()))
    return crossbar, np.full(16, 0.5)


def _check_plain_newton(deck: str, crossbar: Crossbar, v_in: np.ndarray) -> None:
    result = run_deck(deck, mode="subprocess", timeout=120)
    assert not STEPPING.search(result.output), STEPPING.search(result.output)
    _, _, currents = arrays_from_values(crossbar, result.values)
    ref = solve(crossbar, v_in, backend="reference").column_currents
    assert np.max(np.abs(currents - ref)) <= 1e-9 * np.max(np.abs(ref))


def test_there_are_nonlinear_corpus_cases() -> None:
    assert {c.model for c in NONLINEAR} == {"sinh", "1s1r", "1t1r"}
    assert max(c.n_rows * c.n_cols for c in NONLINEAR) >= 64 * 64


@pytest.mark.parametrize("case", NONLINEAR, ids=lambda c: c.name)
def test_committed_nonlinear_deck_converges_by_plain_newton(case) -> None:
    from xbar_circuit.netlists import ngspice_capabilities

    if case.n_rows * case.n_cols > 32 * 32 and not ngspice_capabilities().klu:
        pytest.skip("above 32x32 this deck takes minutes without KLU (make validate runs it)")
    deck = (REFERENCE_DIR / case.name / "deck.cir").read_text()
    assert "abstol=1e-18" not in deck
    _check_plain_newton(deck, case.crossbar(), case.v_in())
    if case.n_rows * case.n_cols <= 32 * 32:
        # Sparse 1.3 is where unmeetable tolerances showed: run without KLU too.
        _check_plain_newton(deck.replace(KLU_OPTION, ""), case.crossbar(), case.v_in())


@pytest.mark.parametrize("klu", [False, True])
def test_one_s_one_r_reproducer_converges_by_plain_newton(klu: bool) -> None:
    crossbar, v_in = _reproducer()
    deck = write_deck(crossbar, v_in, klu=klu)
    assert re.search(r"^\.options reltol=1e-12 abstol=\S+ vntol=\S+", deck, re.M)
    _check_plain_newton(deck, crossbar, v_in)


def test_unmeetable_abstol_does_not_converge_quickly() -> None:
    """The check above can fail: the old ``abstol=1e-18`` sends Sparse 1.3 stepping."""
    crossbar, v_in = _reproducer()
    deck = re.sub(r"^\.options reltol.*$",
                  ".options reltol=1e-12 abstol=1e-18 vntol=1e-15 gmin=1e-20 itl1=500",
                  write_deck(crossbar, v_in, klu=False), flags=re.M)
    with pytest.raises(NgspiceError) as info:
        run_deck(deck, mode="subprocess", timeout=4, keep_files=False)
    assert info.value.deck_path is None
