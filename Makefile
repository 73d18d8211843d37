# The two commands a new user runs: `make run` and `make test`. Everything else is set-up they need.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export WORKBENCH_HOME ?= $(CURDIR)
# vectorbt's numba kernels compile on first use; keep the compiled code between runs.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: run test lint format lab setup sysdeps clean dashboard bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: install it and re-run (or set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo's paper run trades live public data when the exchange answers, else a replay labelled REPLAY
# (live.feed = auto: a short probe of live.probe_url; see README "Live market data").
run: $(STAMP)
	$(VENV)/bin/workbench init --demo
	WORKBENCH_LIVE__FEED=auto $(VENV)/bin/workbench dashboard

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

# What the tests need from the system: a throw-away PostgreSQL cluster and Chromium for the browser tests
# (Playwright drives Debian's chromium, no downloaded browser): Debian's packages, installed when this runs
# as root with apt-get; elsewhere those tests skip and say why.
sysdeps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL (Debian package postgresql) for the store and MLflow-server tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "note: PostgreSQL could not be installed: its tests will skip"; \
	  else echo "note: PostgreSQL is not installed (Debian package postgresql): its tests will skip"; fi; \
	fi
	@if ! test -x /usr/bin/chromium; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium (Debian package chromium) for the browser tests (tests/browser, Playwright)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "note: Chromium could not be installed: the browser tests will skip"; \
	  else echo "note: Chromium is not installed (Debian package chromium): the browser tests will skip"; fi; \
	fi

# The test suite on both cores; the notebooks after it in one process, in order (they share one home).
# Whole files to each worker (a file's module fixtures start once), longest first and in that order
# (tests/conftest.py LONGEST_FIRST), so the two workers finish together.
test: lint sysdeps
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder tests
	$(PY) -m pytest workbench/notebooks

lab: $(STAMP)
	$(VENV)/bin/workbench lab

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .cache
