# The one entry point: `make demo`, `make test`, `make lint`, `make bench`.
# Both `demo` and `test` create the virtual environment and install what they need.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The PostgreSQL the suite runs against (CI runs every storage test on SQLite and on this).
# Set it empty to skip the PostgreSQL half locally: RAMPART_TEST_PG_URL= make test
RAMPART_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
export RAMPART_TEST_PG_URL
PYTEST_FLAGS ?=
DIST ?= dist

.PHONY: venv system-packages test test-fast test-slow demo lint bench package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[collector,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the suite and the demo need (Chromium, poppler, pango, HAProxy, ...): installed only when missing.
system-packages:
	scripts/system-packages.sh test

test: test-fast test-slow

test-fast: $(STAMP) system-packages
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_FLAGS)

# pytest exits 5 when no test carries the marker: not a failure.
test-slow: $(STAMP) system-packages
	$(BIN)/python -m pytest -m "slow" $(PYTEST_FLAGS) || [ $$? -eq 5 ]

# The demo (scripts/demo.sh): the baseline on this machine; then a collector on a free loopback port (all state
# under demo-data/), this machine's agent enrolled with it, one full agent run delivered, the collector's summary.
demo: $(STAMP) system-packages
	BIN=$(BIN) scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	scripts/system-packages.sh bench
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# What an administrator deploys, in $(DIST)/: the sdist and the wheel, and the agent's Debian package built
# from that wheel for Debian 12 (packaging/build_deb.py; needs dpkg-dev and /usr/bin/python3.11).
package: $(STAMP)
	rm -rf $(DIST)
	$(BIN)/python -m build --outdir $(DIST) .
	$(BIN)/python packaging/build_deb.py deb $(DIST)/rampart-*.whl --out $(DIST)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
