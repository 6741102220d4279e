"""Regenerate the ngspice reference corpus: ``make references``.

For every case of :data:`validation.cases.CASES` this writes the spec, the input
vector, the exact deck, and the binary rawfile of ``ngspice -b -r`` into
``validation/references/<case>/``, then the manifest with the ngspice version, the
matrix solver ngspice used (KLU or Sparse 1.3) and the run mode.

Decks ask for KLU when the installed ngspice has it, exactly as the ``"ngspice"``
backend does, so that ``make validate`` re-runs the committed decks unchanged. Before
a case is overwritten, its new values are compared with the committed ones and the
largest difference is printed (relative to the case's largest |value| of each kind):
a regenerated corpus must agree with the old one to rounding level.

Usage::

    python scripts/make_references.py [--output DIR] [CASE ...]

With case names, only those cases are simulated again; the others keep their files
and manifest entries.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import shutil
import sys
import time
from pathlib import Path

from xbar_circuit.errors import NgspiceError
from xbar_circuit.netlists import (
    ngspice_capabilities,
    op_values,
    read_rawfile,
    run_deck,
    write_deck,
)
from xbar_circuit.validation.cases import CASES, case_by_name
from xbar_circuit.validation.corpus import load_manifest, write_manifest, write_reference

COMMAND = "make references  (python scripts/make_references.py)"


def _values(raw: Path) -> dict[str, float] | None:
    try:
        return op_values(read_rawfile(raw)[-1])
    except (NgspiceError, OSError):
        return None


def _same_results(old_raw: Path, new_raw: Path) -> bool:
    """True when two rawfiles hold bit-identical values (their headers' dates differ)."""
    if not old_raw.exists():
        return False
    old = _values(old_raw)
    new = _values(new_raw)
    return old is not None and new is not None and old.keys() == new.keys() and all(
        float(old[k]).hex() == float(new[k]).hex() for k in old)


def compare_values(old: dict[str, float], new: dict[str, float]) -> dict[str, float]:
    """Largest differences between two operating points holding the same names.

    Returns
    -------
    dict
        ``voltage`` and ``current``: max |new - old| over ``v(...)`` / ``i(...)`` values,
        relative to the largest |old| value of that kind (dimensionless); NaN when
        there is no common value of that kind.
    """
    result = {}
    for kind, prefix in (("voltage", "v("), ("current", "i(")):
        keys = [k for k in old if k.startswith(prefix) and k in new]
        scale = max((abs(old[k]) for k in keys), default=0.0)
        diff = max((abs(new[k] - old[k]) for k in keys), default=math.nan)
        result[kind] = diff / scale if scale > 0 else diff
    return result


REPOSITORY_REFERENCES = Path(__file__).resolve().parent.parent / "validation" / "references"
"""The corpus folder of this repository (never the installed package's copy)."""


def main(argv: list[str] | None = None) -> int:
    """Simulate the cases with ngspice and store the results. Returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="only these cases (default: all)")
    parser.add_argument("--output", type=Path, default=REPOSITORY_REFERENCES,
                        help="corpus folder to write (default: validation/references of "
                             "this repository)")
    args = parser.parse_args(argv)
    directory: Path = args.output
    only = {case_by_name(name).name for name in args.cases}
    directory.mkdir(parents=True, exist_ok=True)
    caps = ngspice_capabilities()
    previous: dict[str, dict] = {}
    if only:
        previous = {e["name"]: e for e in load_manifest(directory)["cases"]}
    entries = []
    solvers: set[str] = set()
    print(f"{caps.version}, matrix solver {caps.solver}, subprocess mode; "
          f"{len(only) or len(CASES)} case(s) to simulate", flush=True)
    total = time.perf_counter()
    for k, case in enumerate(CASES, 1):
        if only and case.name not in only:
            entries.append(previous[case.name])
            solvers.add(previous[case.name].get("matrix_solver", caps.solver))
            continue
        start = time.perf_counter()
        crossbar = case.crossbar()
        deck = write_deck(crossbar, case.v_in(), title=f"xbar-circuit reference case {case.name}",
                          klu=caps.klu)
        result = run_deck(deck, mode="subprocess", keep_files=True)
        assert result.deck_path is not None
        folder = os.path.dirname(result.deck_path)
        raws = glob.glob(os.path.join(folder, "*.raw"))
        if len(raws) != 1:
            print(f"{case.name}: expected one rawfile in {folder}, found {raws}", file=sys.stderr)
            return 1
        new_raw = Path(raws[0])
        old_raw = directory / case.name / "ngspice.raw"
        old_deck = directory / case.name / "deck.cir"
        old_values = _values(old_raw) if old_raw.exists() else None
        change = ""
        if old_values is not None:
            diff = compare_values(old_values, result.values)
            change = (f"  vs committed: dV/max|V| {diff['voltage']:.1e}, "
                      f"dI/max|I| {diff['current']:.1e}")
        kept = (old_deck.exists() and old_deck.read_text() == deck
                and _same_results(old_raw, new_raw))
        if kept:
            # Same deck, bit-identical values: keep the committed bytes (only the date
            # in the rawfile header would change), so regenerating does not churn git.
            shutil.copyfile(old_raw, new_raw)
        entry = write_reference(case, deck, new_raw, directory)
        entry["matrix_solver"] = result.solver
        entry["ngspice_seconds"] = round(result.seconds, 3)
        entries.append(entry)
        solvers.add(result.solver)
        shutil.rmtree(folder, ignore_errors=True)
        print(f"[{k:2d}/{len(CASES)}] {case.name:28s} {case.size:>7s}  {result.solver:10s} "
              f"ngspice {result.seconds:6.2f} s (total {time.perf_counter() - start:.2f} s)"
              + ("  unchanged" if kept else "  NEW/CHANGED") + change, flush=True)
    path = write_manifest(entries, caps.version, COMMAND, directory,
                          matrix_solver=", ".join(sorted(solvers)), mode="subprocess")
    print(f"wrote {len(entries)} cases and {path} ({caps.version}, {caps.solver}) in "
          f"{time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
