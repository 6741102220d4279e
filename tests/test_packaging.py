"""Packaging: a plain install solves without the optional packages, extras are named in
errors, ``python -m xbar_circuit`` runs, the metadata is what a build needs.

Tests that read the source tree (pyproject.toml, setup.py, the bare folders) skip when
the suite runs against an installed package from elsewhere (scripts/check_package.sh).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

import xbar_circuit
from xbar_circuit._optional import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
IN_SOURCE_TREE = (ROOT / "setup.py").is_file() and (ROOT / "cython_solvers").is_dir()
source_tree = pytest.mark.skipif(not IN_SOURCE_TREE, reason="needs the source tree")

OPTIONAL = ("PySpice", "dask", "distributed", "xarray", "h5py", "h5netcdf", "matplotlib",
            "yaml", "networkx", "torch")


def _run_without_optional(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where every optional package fails to import."""
    block = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in OPTIONAL)
    return subprocess.run([sys.executable, "-c", block + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_core_solves_and_cli_runs_without_optional_packages(tmp_path: Path) -> None:
    result = _run_without_optional("""
        import json
        import numpy as np
        import xbar_circuit as xc
        import xbar_circuit.netlists
        from xbar_circuit.cli import main
        x = xc.Crossbar.random(6, 5, r_row=1.0, r_col=1.0, r_driver=2.0, seed=3)
        nodal = xc.solve(x, np.full(6, 0.2))
        ref = xc.solve(x, np.full(6, 0.2), backend="reference")
        assert np.allclose(nodal.column_currents, ref.column_currents, rtol=1e-8, atol=0)
        xc.netlists.write_deck(x, np.full(6, 0.2))
        main(["solve", "--random", "8x8", "--json"], standalone_mode=False)
        """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["backends"]["nodal"]["column_currents"]) == 8


def test_the_blocking_itself_works(tmp_path: Path) -> None:
    # The test above means something only if a blocked package really cannot be imported.
    result = _run_without_optional("import matplotlib", tmp_path)
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize(("code", "extra", "package"), [
    ("sol.save('s.nc')", "tables", "xarray"),
    ("sol.plot()", "plot", "matplotlib"),
    ("xbar_circuit.netlists.to_pyspice_circuit(x, np.ones(2))", "spice", "PySpice"),
    ("open('s.yaml', 'w').write('rows: [4]');"
     " from xbar_circuit.tables import Sweep; Sweep.from_file('s.yaml')", "tables", "yaml"),
    ("open('t.nc', 'wb').write(b'x');"
     " from xbar_circuit.tables import LookupTable; LookupTable.load('t.nc')", "tables",
     "xarray"),
])
def test_optional_features_name_their_extra(code: str, extra: str, package: str,
                                            tmp_path: Path) -> None:
    result = _run_without_optional(f"""
        import numpy as np
        import xbar_circuit
        import xbar_circuit.netlists
        x = xbar_circuit.Crossbar(np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0)
        sol = xbar_circuit.solve(x, np.ones(2))
        try:
            {code}
        except xbar_circuit.MissingDependencyError as exc:
            print("EXTRA", exc.extra, "|", exc)
        """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"EXTRA {extra} |" in result.stdout, result.stdout
    assert f'pip install "xbar-circuit[{extra}]"' in result.stdout
    assert package in result.stdout


def test_missing_dependency_error_is_an_import_error() -> None:
    assert issubclass(xbar_circuit.MissingDependencyError, ImportError)
    assert issubclass(xbar_circuit.MissingDependencyError, xbar_circuit.XbarError)


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "xbar_circuit", "solve", "--random", "4x3",
                             "--json"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["backends"]["nodal"]["column_currents"]) == 3
    usage = subprocess.run([sys.executable, "-m", "xbar_circuit", "--help"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0 and "Usage: xbar" in usage.stdout


def test_package_is_typed_and_ships_its_corpus() -> None:
    assert (resources.files("xbar_circuit") / "py.typed").is_file()
    assert (resources.files("xbar_circuit.validation") / "references" / "manifest.json"
            ).is_file()


# ------------------------------------------------------------- the source tree
def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


@source_tree
def test_metadata_license_and_dependencies() -> None:
    data = _pyproject()
    project = data["project"]
    assert project["license"] == "BSD-3-Clause"  # SPDX string, not the deprecated table
    license_text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause" in license_text and "xbar-circuit developers" in license_text
    setuptools = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools and re.search(r">=\s*(7[7-9]|[89]\d)", setuptools[0]), setuptools
    core = _names(project["dependencies"])
    assert core & {name.lower() for name in OPTIONAL} == set(), core
    extras = project["optional-dependencies"]
    for module, extra in EXTRAS.items():
        package = {"yaml": "pyyaml"}.get(module, module).lower()
        assert package in _names(extras[extra]), f"{package} missing from [{extra}]"
    assert {"xbar-circuit"} == _names(extras["all"])
    for extra in ("spice", "tables", "plot"):
        assert extra in extras["all"][0], f"[all] lacks [{extra}]"


@source_tree
def test_setup_refuses_to_build_without_kernel_sources(tmp_path: Path) -> None:
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    (tmp_path / "cython_solvers").mkdir()
    result = subprocess.run([sys.executable, "setup.py", "--name"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no kernel sources cython_solvers/_*.pyx" in result.stderr


@source_tree
def test_manifest_ships_the_kernel_sources() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert re.search(r"^include .*cython_solvers/\*\.pyx", manifest, re.M)
    assert sorted((ROOT / "cython_solvers").glob("_*.pyx")), "no kernels to ship"


@source_tree
@pytest.mark.parametrize("folder", ["netlists", "validation", "cython_solvers"])
def test_bare_folder_import_names_the_package(folder: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"installed as 'xbar_circuit.{folder}'" in result.stderr, result.stderr


@source_tree
def test_source_tree_without_install_says_how_to_fix(tmp_path: Path) -> None:
    # A copy of the bare package folder stands for a clone that was never installed.
    shutil.copytree(ROOT / "xbar_circuit", tmp_path / "xbar_circuit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # -S: without site-packages, so that no editable install maps the subpackages.
    result = subprocess.run([sys.executable, "-S", "-c", "import xbar_circuit"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "pip install -e ." in result.stderr and str(tmp_path) in result.stderr
