"""The ```python blocks of the README and of each user guide run as written.

The blocks of one guide run in order in one namespace (later examples build on
earlier ones), in a temporary working directory.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ["README.md", "docs/getting-started.md", "docs/variability.md", "docs/solver.md",
          "docs/ngspice.md", "docs/tables.md", "docs/mapping.md", "docs/models.md",
          "docs/compensation.md", "docs/neurosim.md"]
# docs/aihwkit.md's examples run in tests/test_aihwkit_calibration.py (some need aihwkit).


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("guide", [g for g in GUIDES if (ROOT / g).exists()])
def test_guide_examples_run(guide: str, tmp_path, monkeypatch) -> None:
    blocks = _python_blocks(ROOT / guide)
    assert blocks, f"{guide} has no Python example"
    if any("ngspice" in block for block in blocks) and shutil.which("ngspice") is None:
        pytest.skip("these examples run ngspice, which is not installed")
    # Examples are written for the repository root; run them in a scratch directory
    # that sees the repository's sweep files, so that what they write stays out of git.
    (tmp_path / "validation").symlink_to(ROOT / "validation")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_example"}
    have_torch = importlib.util.find_spec("torch") is not None
    for index, code in enumerate(blocks):
        if re.search(r"^\s*(import torch|from torch)", code, re.M) and not have_torch:
            continue  # the optional PyTorch wrapper's example needs torch
        exec(compile(code, f"{guide}, example {index}", "exec"), namespace)
