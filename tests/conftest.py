"""Shared test fixtures: one test class or function run per backend."""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest


def _prefer_the_installed_package() -> None:
    """Test a regular (non-editable) install even when pytest runs inside the clone.

    ``python -m pytest`` puts the working directory first on ``sys.path``; there the bare
    ``xbar_circuit/`` folder would shadow the installed package, which alone holds the
    subpackages that setup.py maps in (netlists, cython_solvers, validation) and the
    compiled kernels. An editable install maps them itself and is left alone.
    """
    try:
        dist = metadata.distribution("xbar-circuit")
    except metadata.PackageNotFoundError:
        return  # not installed: importing the source folder explains what to do
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        return
    root = str(Path(__file__).resolve().parent.parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != root]


_prefer_the_installed_package()

HAVE_NGSPICE = shutil.which("ngspice") is not None

# Every backend that must reproduce the physics; ngspice runs only where installed
# (the Makefile installs it, so CI always has it).
BACKEND_PARAMS = [
    "reference",
    "nodal",
    pytest.param(
        "ngspice",
        marks=[
            pytest.mark.ngspice,
            pytest.mark.skipif(not HAVE_NGSPICE, reason="ngspice is not installed"),
        ],
    ),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    """Name of a backend; tests using it run once per backend."""
    return request.param
