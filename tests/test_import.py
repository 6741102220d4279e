"""``import xbar_circuit`` stays light: no PySpice, matplotlib, networkx or Dask."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("PySpice", "matplotlib", "networkx", "dask")


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return {name.split(".")[0] for name in json.loads(out.strip().splitlines()[-1])}


def test_import_does_not_pull_heavy_dependencies() -> None:
    loaded = _modules_after("import xbar_circuit")
    assert not loaded & set(HEAVY), f"import xbar_circuit loaded {sorted(loaded & set(HEAVY))}"


def test_netlists_and_solving_stay_light() -> None:
    statement = (
        "import numpy as np, xbar_circuit as xc, xbar_circuit.netlists\n"
        "x = xc.Crossbar(np.full((3, 3), 1e-4), r_row=1.0, r_col=1.0)\n"
        "xc.solve(x, np.ones(3)); xc.solve(x, np.ones(3), backend='reference')"
    )
    loaded = _modules_after(statement)
    assert not loaded & set(HEAVY), f"loaded {sorted(loaded & set(HEAVY))}"
    # The check itself can fail: importing matplotlib is seen.
    assert "matplotlib" in _modules_after("import xbar_circuit, matplotlib")
