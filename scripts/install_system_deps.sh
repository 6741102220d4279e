#!/usr/bin/env bash
# Install the Debian packages xbar-circuit needs, only those that are missing:
#   ngspice, libngspice0, libngspice0-dev (SPICE reference; PySpice opens libngspice.so),
#   python3-venv, python3-dev, gcc (virtualenv and the Cython extension build).
# Runs apt-get as root, or through sudo when not root. Idempotent.
set -euo pipefail

need=()
command -v ngspice >/dev/null 2>&1 || need+=(ngspice)
# PySpice's shared mode opens the unversioned libngspice.so (from libngspice0-dev).
if ! ldconfig -p 2>/dev/null | grep -q 'libngspice\.so '; then
    need+=(libngspice0 libngspice0-dev)
fi
command -v gcc >/dev/null 2>&1 || need+=(gcc)
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need+=(python3-venv)
fi
if ! "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' >/dev/null 2>&1; then
    need+=(python3-dev)
fi

if [ ${#need[@]} -eq 0 ]; then
    echo "system dependencies: all present (ngspice $(ngspice --version 2>/dev/null | grep -o 'ngspice-[0-9.]*' | head -1))"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "error: missing Debian packages: ${need[*]}; run as root: apt-get install ${need[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
