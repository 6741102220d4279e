#!/usr/bin/env bash
# Build the sdist and the wheel as a user's pip would, install each into a fresh venv and
# test the installed package from a scratch folder outside the source tree (inside it,
# the folders netlists/, cython_solvers/ and validation/ would stand in for the package).
#
#   scripts/check_package.sh            both distributions
#   KEEP=1 scripts/check_package.sh     keep the scratch folder for inspection
#
# Needs: $PY (default .venv/bin/python) with `build` (the [dev] extra), $PYTHON for the
# fresh venvs (default python3), and the package registry for the build and the venvs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xbar-check-package.XXXXXX")
[[ -n "${KEEP:-}" ]] || trap 'rm -rf "$WORK"' EXIT
T0=$SECONDS

step() { printf '\n== %s (%ds)\n' "$*" "$((SECONDS - T0))"; }
fail() { echo "check_package: $*" >&2; exit 1; }

# pip names every local index folder it skips; that noise hides the real output.
pip_install() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

step "build sdist and wheel (the wheel is built from the sdist)"
"$PY" -m build --outdir "$WORK/dist" . > "$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; fail "python -m build failed"; }
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)
echo "$(basename "$SDIST")  $(basename "$WHEEL")"
# setuptools' own complaints (deprecated configuration, data folders it would ignore).
WARNINGS='DeprecationWarning|is deprecated|Package would be ignored|absent from the `packages`'
if grep -qE "$WARNINGS" "$WORK/build.log"; then
    grep -E "$WARNINGS" "$WORK/build.log" | sort -u | head -5
    fail "the build printed setuptools warnings (above)"
fi

step "contents of the distributions"
SDIST_LIST=$(tar tzf "$SDIST")
for pyx in cython_solvers/_*.pyx cython_solvers/*.pxd; do
    [[ -e "$pyx" ]] || continue
    grep -q "/$pyx\$" <<<"$SDIST_LIST" || fail "sdist lacks $pyx"
done
for f in LICENSE xbar_circuit/py.typed validation/references/manifest.json; do
    grep -q "/$f\$" <<<"$SDIST_LIST" || fail "sdist lacks $f"
done
WHEEL_LIST=$("$PY" -m zipfile -l "$WHEEL" | awk '{print $1}')
for pyx in cython_solvers/_*.pyx; do
    name=$(basename "$pyx" .pyx)
    grep -q "^xbar_circuit/cython_solvers/$name\..*\.so\$" <<<"$WHEEL_LIST" \
        || fail "wheel lacks the compiled kernel $name"
done
for f in xbar_circuit/py.typed xbar_circuit/__main__.py \
         xbar_circuit/validation/references/manifest.json; do
    grep -q "^$f\$" <<<"$WHEEL_LIST" || fail "wheel lacks $f"
done
grep -q "licenses/LICENSE\$" <<<"$WHEEL_LIST" || fail "wheel lacks LICENSE"
unzip -p "$WHEEL" '*.dist-info/METADATA' | grep -q "^License-Expression: BSD-3-Clause" \
    || fail "wheel metadata lacks License-Expression: BSD-3-Clause"
echo "kernels, py.typed, corpus and LICENSE present; License-Expression: BSD-3-Clause"

# One fresh venv per distribution. The plain install comes first: it must import, solve
# and run the CLI with the core dependencies alone; then the extras and the test suite.
check_install() {
    local kind=$1 dist=$2
    shift 2
    local tests=("$@")
    local venv="$WORK/venv-$kind" run="$WORK/run-$kind"
    step "$kind: fresh venv, plain install"
    "$PYTHON" -m venv "$venv"
    pip_install "$venv/bin/python" -m pip install -q "$dist"
    mkdir -p "$run"
    cd "$run"
    "$venv/bin/python" - "$venv" <<'EOF'
import importlib.util
import sys

import numpy as np

import xbar_circuit as xc

venv = sys.argv[1]
assert xc.__file__.startswith(venv), f"imported {xc.__file__}, not the installed package"
absent = [m for m in ("PySpice", "dask", "xarray", "h5py", "matplotlib", "yaml", "networkx")
          if importlib.util.find_spec(m) is not None]
assert not absent, f"a plain install brought optional packages: {absent}"
x = xc.Crossbar.random(8, 8, r_row=1.0, r_col=1.0, seed=1)
sol = xc.solve(x, np.full(8, 0.2))
ref = xc.solve(x, np.full(8, 0.2), backend="reference")
assert np.allclose(sol.column_currents, ref.column_currents, rtol=1e-9, atol=0)
try:
    sol.save("solution.nc")
except xc.MissingDependencyError as exc:
    assert "xbar-circuit[tables]" in str(exc), exc
else:
    raise AssertionError("save() without xarray did not raise MissingDependencyError")
print(f"plain install: imported from {xc.__file__}; solved, nf={sol.nf:.4g}")
EOF
    "$venv/bin/xbar" solve --random 8x8 > xbar-solve.txt
    "$venv/bin/python" -m xbar_circuit solve --random 8x8 --json > xbar-solve.json
    "$venv/bin/python" -c "import json; json.load(open('xbar-solve.json'))"
    head -3 xbar-solve.txt

    # [dev] brings the test suite's own tools (pytest and the cross-checks it uses).
    step "$kind: extras [all,dev] and tests (${tests[*]}), from $run"
    pip_install "$venv/bin/python" -m pip install -q "${dist}[all,dev]"
    # The tracked files of the clone (tests, guides, scripts, example sweeps) without
    # anything that could stand in for the installed package: the package folders' Python
    # files and setup.py stay behind; pyproject.toml gives pytest its markers.
    git -C "$ROOT" ls-files -z | (cd "$ROOT" && tar --null -T - -cf -) | tar -xf - -C "$run"
    rm -rf "$run/xbar_circuit" "$run/netlists" "$run/cython_solvers" "$run/setup.py"
    find "$run/validation" -maxdepth 1 -name "*.py" -delete
    (cd "$run" && "$venv/bin/python" -m pytest -q -p no:cacheprovider -ra "${tests[@]}")
    cd "$ROOT"
}

# Inside the clone, `python -m pytest` must test the regular install too (tests/conftest.py
# steps around the bare source folder); the packaging tests also read the source tree.
in_tree() {
    step "$1: python -m pytest inside the source tree, against the installed package"
    PYTHONDONTWRITEBYTECODE=1 "$WORK/venv-$1/bin/python" -m pytest -q -p no:cacheprovider \
        tests/test_packaging.py
}

# The wheel runs the whole suite. `python -m build` made that wheel from the sdist, so
# the sdist's own install (built again by pip) runs the packaging tests and the suites of
# the compiled kernels and the physics, which is what a build from it can get wrong.
check_install wheel "$WHEEL" tests
in_tree wheel
check_install sdist "$SDIST" tests/test_packaging.py tests/test_nodal_solver.py \
    tests/test_closed_form.py tests/test_identities.py tests/test_solution_io.py
step "done"
