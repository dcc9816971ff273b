# One-command set-up. `make lab` opens JupyterLab on the notebooks; `make test` runs the suite.
# torch is installed first, pinned, so pip takes the CPU wheel this machine has on disk instead of
# resolving the project's open range to a multi-GB CUDA build. Override: make TORCH_SPEC='torch'.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra options of bench/run.py, e.g. make bench BENCH_ARGS=--quick, BENCH_ARGS="--only 'md/*/si64'".
BENCH_ARGS ?=

.PHONY: env browser frontend-tools lab demo lint test binder-check bench bench-threads viewer clean

env: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

# Jupyter refuses to start as root (containers, this CI machine) unless told it may.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: env
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

demo: env
	$(BIN)/python notebooks/run.py notebooks/00_quickstart.ipynb

# The real-browser widget tests drive Debian's chromium (never a browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) \
	  || echo "warning: could not install chromium; tests/browser will be skipped"

# ruff (pyflakes rules and the formatter) on the package, tests and benchmarks, and mypy on the
# package; all configured in pyproject.toml, all with zero findings allowed.
lint: env
	$(BIN)/ruff check nnp_lab tests bench
	$(BIN)/ruff format --check nnp_lab tests bench
	$(BIN)/mypy

# esbuild (npm registry) lets the test suite check that widgets/viewer.js is the bundle of
# widgets/src/; without npm that one test is skipped with the reason.
frontend-tools:
	@command -v npm >/dev/null 2>&1 && npm ci --prefix widgets --no-audit --no-fund --loglevel=error \
	  || echo "warning: npm not available; the viewer bundle check will be skipped"

test: env browser frontend-tools lint
	$(BIN)/python -m pytest

# Binder's build without Binder: a fresh venv from binder/requirements.txt + binder/postBuild,
# the quickstart headless in it, the widgets tour in JupyterLab + Chromium (~4 min; part of
# `make test` too).
binder-check: env browser
	$(BIN)/python -m pytest tests/browser/test_binder_browser.py -p no:randomly

# Every benchmark of the speed issue against the upstream calculators -> bench/RESULTS.md and
# bench/results.json (hours on a 2-core CPU; run it on a quiet machine), then the properties
# batched vs one structure at a time (bench/properties.py, a minute).
bench: env
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/properties.py

# The thread policy at default settings against the upstream default: MD steps idle, with a
# core kept busy, and per CPU count (taskset, cgroup quota) -> prints the tables (~25 min).
bench-threads: env
	$(BIN)/python bench/threads.py

# Rebuild the viewer's committed bundle widgets/viewer.js from widgets/src/ (needs node and npm;
# installing nnp_lab and `make test` do not). Commit viewer.js with the src/ change.
viewer:
	npm ci --prefix widgets && npm run build --prefix widgets

clean:
	rm -rf $(VENV) build *.egg-info
