"""Shared test fixtures: one test class or function run per backend."""

from __future__ import annotations

import shutil

import pytest

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
