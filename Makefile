# The two commands a new user runs: `make run` and `make test`. Everything else is set-up they need.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export WORKBENCH_HOME ?= $(CURDIR)
# vectorbt's numba kernels compile on first use; keep the compiled code between runs.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: run test lint format lab setup clean dashboard bench

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

# The gates CI runs before the tests: lint, formatting and types (configured in pyproject.toml).
LINT_PATHS := workbench tests bench

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy workbench

# Rewrites files: the fixable lint findings, then the formatter.
format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

test: lint
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/workbench lab

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache
