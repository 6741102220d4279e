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

from xbar_circuit.netlists import ngspice_version, run_deck, write_deck

from .cases import CASES
from .corpus import REFERENCE_DIR, write_manifest, write_reference

COMMAND = "make references  (python -m xbar_circuit.validation.make_references)"


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
        entries.append(write_reference(case, deck, Path(raws[0]), directory))
        shutil.rmtree(folder, ignore_errors=True)
        print(f"{case.name:32s} {case.size:>7s}  ngspice {result.seconds:6.2f} s "
              f"(total {time.perf_counter() - start:.2f} s)")
    path = write_manifest(entries, version, COMMAND, directory)
    print(f"wrote {len(entries)} cases and {path} ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
