"""scripts/install_system_deps.sh: the mirror it reads from apt's sources, and its KLU probe.

The functions are taken from the script itself and run on sources files written here
(``APT_SOURCES_DIR`` / ``APT_SOURCES_LIST``), so nothing on the machine is changed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_system_deps.sh"
FUNCTIONS = ("apt_mirror_uri", "apt_signed_by", "ngspice_has_klu")


def _call(snippet: str, sources: Path | None = None, listfile: Path | None = None) -> str:
    extract = "; ".join(f'/^{name}()/,/^}}/p' for name in FUNCTIONS)
    env = {"PATH": "/usr/bin:/bin"}
    if sources is not None:
        env["APT_SOURCES_DIR"] = str(sources)
    env["APT_SOURCES_LIST"] = str(listfile or "/nonexistent")
    command = (f'APT_SOURCES_DIR="${{APT_SOURCES_DIR:-/nonexistent}}"; '
               f'source <(sed -n "{extract}" {SCRIPT}); {snippet}')
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    return f"{proc.returncode}|{proc.stdout.strip()}"


def test_deb822_sources_give_the_release_mirror_not_security(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/sec.gpg\n"
        "\n"
        "Types: deb\n"
        "# a comment line\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert _call("apt_mirror_uri bookworm", tmp_path) == "0|http://mirror.example/debian"
    assert _call("apt_signed_by http://mirror.example/debian", tmp_path) == \
        "0|/usr/share/keyrings/debian-archive-keyring.gpg"
    assert _call("apt_mirror_uri trixie", tmp_path).startswith("1|")


def test_one_line_sources_list_with_options(tmp_path: Path) -> None:
    listfile = tmp_path / "sources.list"
    listfile.write_text("# deb http://old.example/debian bookworm main\n"
                        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian "
                        "bookworm main contrib\n"
                        "deb http://one.example/debian-security bookworm-security main\n")
    empty = tmp_path / "empty.d"
    empty.mkdir()
    assert _call("apt_mirror_uri bookworm", empty, listfile) == "0|http://one.example/debian"


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
def test_klu_probe_agrees_with_the_backend() -> None:
    from xbar_circuit.netlists import ngspice_capabilities

    result = _call("if ngspice_has_klu; then echo klu; else echo sparse; fi")
    assert result == ("0|klu" if ngspice_capabilities().klu else "0|sparse")
