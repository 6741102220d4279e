"""Read and write the committed ngspice reference corpus.

Layout (one folder per case, in the style of scikit-rf's Qucs references)::

    validation/references/
        manifest.json          ngspice version, matrix solver (KLU or Sparse 1.3) and run
                               mode, date, command, case list, file hashes
        <case>/spec.json       the crossbar (Crossbar.to_json, exact floats)
        <case>/v_in.json       the input vector, volts (exact floats)
        <case>/deck.cir        the exact netlist ngspice simulated
        <case>/ngspice.raw     ngspice's binary rawfile (float64 values)

Regenerate everything with ``make references``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np

from xbar_circuit import Crossbar
from xbar_circuit.errors import XbarError

from .cases import Case

__all__ = ["REFERENCE_DIR", "Reference", "load_reference", "load_manifest", "write_reference",
           "write_manifest", "CorpusError"]

REFERENCE_DIR = Path(__file__).resolve().parent / "references"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "xbar-circuit/reference-corpus"
MANIFEST_VERSION = 1
FILES = ("spec.json", "v_in.json", "deck.cir", "ngspice.raw")


class CorpusError(XbarError, ValueError):
    """A reference case is missing, corrupt or does not match its manifest."""


@dataclasses.dataclass
class Reference:
    """One reference case as committed.

    Attributes
    ----------
    case : Case
        The recipe it was generated from.
    crossbar : Crossbar
        The simulated array (read from ``spec.json``).
    v_in : ndarray, shape (M,)
        Input voltages in volts.
    row_voltages, column_voltages : ndarray, shape (M, N)
        ngspice's node voltages in volts.
    column_currents : ndarray, shape (N,)
        ngspice's virtual-ground branch currents in amperes.
    deck : str
        The netlist text.
    """

    case: Case
    crossbar: Crossbar
    v_in: np.ndarray
    row_voltages: np.ndarray
    column_voltages: np.ndarray
    column_currents: np.ndarray
    deck: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_reference(case: Case, deck: str, rawfile: Path, directory: Path = REFERENCE_DIR) -> dict:
    """Store one case's inputs and ngspice's output; return its manifest entry."""
    folder = directory / case.name
    folder.mkdir(parents=True, exist_ok=True)
    case.crossbar().save(folder / "spec.json")
    (folder / "v_in.json").write_text(json.dumps(case.v_in().tolist()) + "\n")
    (folder / "deck.cir").write_text(deck)
    shutil.copyfile(rawfile, folder / "ngspice.raw")
    return {
        "name": case.name,
        "recipe": dataclasses.asdict(case),
        "sha256": {name: _sha256(folder / name) for name in FILES},
    }


def write_manifest(entries: list[dict], ngspice_version: str, command: str,
                   directory: Path = REFERENCE_DIR, *, matrix_solver: str = "Sparse 1.3",
                   mode: str = "subprocess") -> Path:
    """Write ``manifest.json`` with provenance for every case.

    Parameters
    ----------
    entries : list of dict
        One entry per case (:func:`write_reference`), possibly with the case's
        ``matrix_solver`` and ``ngspice_seconds``.
    ngspice_version : str
        E.g. ``"ngspice-46"``.
    command : str
        The command that regenerates the corpus.
    directory : Path
        Corpus location.
    matrix_solver : str
        ``"KLU"`` or ``"Sparse 1.3"`` (both, comma-separated, if the cases differ).
    mode : str
        How ngspice ran: ``"subprocess"`` or ``"shared"``.
    """
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ngspice_version": ngspice_version,
        "matrix_solver": matrix_solver,
        "mode": mode,
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "cases": entries,
    }
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def load_manifest(directory: Path = REFERENCE_DIR) -> dict:
    """Read and check the corpus manifest.

    Raises
    ------
    CorpusError
        If the manifest is missing, not JSON, or of an unknown format/version.
    """
    path = directory / MANIFEST
    if not path.exists():
        raise CorpusError(f"no reference corpus at {directory} (run `make references`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path} is not valid JSON: {exc}") from None
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
        raise CorpusError(f"{path} is not an xbar-circuit reference manifest of version "
                          f"{MANIFEST_VERSION}")
    return manifest


def load_reference(case: Case, directory: Path = REFERENCE_DIR,
                   manifest: dict | None = None) -> Reference:
    """Load one committed case, checking its files against the manifest hashes.

    Raises
    ------
    CorpusError
        If a file is missing, was modified, or the rawfile lacks a value.
    """
    from xbar_circuit.backends.ngspice import arrays_from_values
    from xbar_circuit.netlists import op_values, read_rawfile

    folder = directory / case.name
    manifest = load_manifest(directory) if manifest is None else manifest
    entry = next((e for e in manifest["cases"] if e["name"] == case.name), None)
    if entry is None:
        raise CorpusError(f"case {case.name!r} is not in the manifest (run `make references`)")
    for name in FILES:
        path = folder / name
        if not path.exists():
            raise CorpusError(f"reference file missing: {path}")
        if _sha256(path) != entry["sha256"][name]:
            raise CorpusError(f"reference file changed since it was generated: {path}")
    crossbar = Crossbar.load(folder / "spec.json")
    if crossbar != case.crossbar():
        raise CorpusError(f"{folder / 'spec.json'} no longer matches the recipe of {case.name!r}; "
                          "run `make references`")
    v_in = np.asarray(json.loads((folder / "v_in.json").read_text()), dtype=np.float64)
    plots = read_rawfile(folder / "ngspice.raw")
    values = op_values(plots[-1])
    row_v, col_v, col_i = arrays_from_values(crossbar, values, str(folder / "deck.cir"))
    return Reference(case, crossbar, v_in, row_v, col_v, col_i, (folder / "deck.cir").read_text())
