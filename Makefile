# The two commands a new user runs: `make run` and `make test`. Everything else is set-up they need.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export WORKBENCH_HOME ?= $(CURDIR)
# vectorbt's numba kernels compile on first use; keep the compiled code between runs.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: run test lab setup clean dashboard bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: install it and re-run (or set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/workbench init --demo
	$(VENV)/bin/workbench dashboard

test: $(STAMP)
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/workbench lab

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache
