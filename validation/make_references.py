"""Regenerate the ngspice reference corpus: ``make references``.

For every case of :data:`validation.cases.CASES` this writes the spec, the input
vector, the exact deck, and the binary rawfile of ``ngspice -b -r`` into
``validation/references/<case>/``, then the manifest with the ngspice version.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import time
from pathlib import Path

from xbar_circuit.errors import NgspiceError
from xbar_circuit.netlists import ngspice_version, op_values, read_rawfile, run_deck, write_deck

from .cases import CASES
from .corpus import REFERENCE_DIR, write_manifest, write_reference

COMMAND = "make references  (python -m xbar_circuit.validation.make_references)"


def _same_results(old_raw: Path, new_raw: Path) -> bool:
    """True when two rawfiles hold bit-identical values (their headers' dates differ)."""
    if not old_raw.exists():
        return False
    try:
        old = op_values(read_rawfile(old_raw)[-1])
    except NgspiceError:
        return False
    new = op_values(read_rawfile(new_raw)[-1])
    return old.keys() == new.keys() and all(
        float(old[k]).hex() == float(new[k]).hex() for k in old)


def main(directory: Path = REFERENCE_DIR) -> int:
    """Simulate every case with ngspice and store the results. Returns an exit code."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    version = ngspice_version()
    for case in CASES:
        start = time.perf_counter()
        crossbar = case.crossbar()
        deck = write_deck(crossbar, case.v_in(), title=f"xbar-circuit reference case {case.name}")
        result = run_deck(deck, mode="subprocess", keep_files=True)
        assert result.deck_path is not None
        folder = os.path.dirname(result.deck_path)
        raws = glob.glob(os.path.join(folder, "*.raw"))
        if len(raws) != 1:
            print(f"{case.name}: expected one rawfile in {folder}, found {raws}", file=sys.stderr)
            return 1
        new_raw = Path(raws[0])
        old_deck = directory / case.name / "deck.cir"
        kept = (old_deck.exists() and old_deck.read_text() == deck
                and _same_results(directory / case.name / "ngspice.raw", new_raw))
        if kept:
            # Same deck, bit-identical values: keep the committed bytes (only the date
            # in the rawfile header would change), so regenerating does not churn git.
            shutil.copyfile(directory / case.name / "ngspice.raw", new_raw)
        entries.append(write_reference(case, deck, new_raw, directory))
        shutil.rmtree(folder, ignore_errors=True)
        print(f"{case.name:32s} {case.size:>7s}  ngspice {result.seconds:6.2f} s "
              f"(total {time.perf_counter() - start:.2f} s)"
              + ("  unchanged" if kept else "  NEW/CHANGED"))
    path = write_manifest(entries, version, COMMAND, directory)
    print(f"wrote {len(entries)} cases and {path} ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
