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

.PHONY: venv assets system-packages test test-fast test-slow demo lint bench bench-quick reliability package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[collector,dev]'
	touch $(STAMP)

# The dashboard's GOV.UK Frontend and Swagger UI assets, from npm (package-lock.json), never committed.
ASSETS := collector/dashboard/built/built.json
$(ASSETS): collector/dashboard/frontend/package-lock.json collector/dashboard/assets.py | $(STAMP)
	cd collector/dashboard/frontend && npm ci --ignore-scripts --no-audit --no-fund
	$(BIN)/python -m collector.dashboard.assets

assets: $(ASSETS)

venv: $(STAMP) $(ASSETS)

# Debian packages the suite and the demo need (Chromium, poppler, pango, HAProxy, ...): installed only when missing.
system-packages:
	scripts/system-packages.sh test

test: test-fast test-slow

test-fast: $(STAMP) $(ASSETS) system-packages
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_FLAGS)

# pytest exits 5 when no test carries the marker: not a failure.
test-slow: $(STAMP) $(ASSETS) system-packages
	$(BIN)/python -m pytest -m "slow" $(PYTEST_FLAGS) || [ $$? -eq 5 ]

# The demo (scripts/demo.sh): the baseline on this machine; then a collector on a free loopback port (all state
# under demo-data/), this machine's agent enrolled with it, one full agent run delivered, the collector's summary,
# then a briefing PDF and an evidence pack of that collector, verified offline, and the dashboard's URL.
demo: $(STAMP) $(ASSETS) system-packages
	BIN=$(BIN) scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every benchmark in bench/ (a bench/*.py with `BENCHMARK = True`, bench/README.md), one process each:
# `make bench` at full size (under 30 minutes) rewrites each one's figures in docs/benchmarks.md between its
# markers; `make bench-quick` runs them with small counts (the ratios in a few minutes) and writes nothing.
# BENCH_FLAGS="--only scale_out" for some of them.
BENCH_FLAGS ?=
bench: $(STAMP) $(ASSETS)
	scripts/system-packages.sh bench
	$(BIN)/python bench/_run.py --write-docs $(BENCH_FLAGS)

bench-quick: $(STAMP) $(ASSETS)
	scripts/system-packages.sh bench
	$(BIN)/python bench/_run.py --quick $(BENCH_FLAGS)

# The fault, fuzz, security and soak suites (they also run within `make test`), then the tables of
# docs/reliability.md (and of any docs/*.md with reliability markers) regenerated from what they wrote.
# RAMPART_SOAK_S=3600 make reliability for the hour-long soak; RAMPART_HYPOTHESIS_PROFILE=deep for more examples.
reliability: $(STAMP) system-packages
	rm -rf build/reliability
	$(BIN)/python -m pytest -m "fault or fuzz or security or soak" $(PYTEST_FLAGS); status=$$?; \
	$(BIN)/python scripts/reliability_report.py && exit $$status

# What an administrator deploys, in $(DIST)/: the sdist and the wheel, and the agent's Debian package built
# from that wheel for Debian 12 (packaging/build_deb.py; needs dpkg-dev and /usr/bin/python3.11).
package: $(STAMP)
	rm -rf $(DIST)
	$(BIN)/python -m build --outdir $(DIST) .
	$(BIN)/python packaging/build_deb.py deb $(DIST)/rampart-*.whl --out $(DIST)

clean:
	rm -rf $(VENV) build $(DIST) *.egg-info collector/dashboard/built collector/dashboard/frontend/node_modules .pytest_cache .mypy_cache .ruff_cache
