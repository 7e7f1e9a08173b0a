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

.PHONY: venv test test-fast test-slow demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[collector,dev]'
	touch $(STAMP)

venv: $(STAMP)

test: test-fast test-slow

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_FLAGS)

# pytest exits 5 when no test carries the marker: not a failure.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow" $(PYTEST_FLAGS) || [ $$? -eq 5 ]

# The demo: the baseline on this machine; then a collector on a free loopback port (all state under
# demo-data/), this machine's agent enrolled with it, one full agent run delivered, the collector's summary.
DEMO_DIR := $(CURDIR)/demo-data
DEMO_CONFIG := $(DEMO_DIR)/config.yaml

demo: $(STAMP)
	$(BIN)/rampart-agent check
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	printf 'collector:\n  data_dir: %s/collector\n  listen_port: %s\nagent:\n  state_dir: %s/agent\n  splay: "0"\n' \
	  "$(DEMO_DIR)" "$$port" "$(DEMO_DIR)" > $(DEMO_CONFIG); \
	echo; echo "== rampart-collector init and serve on https://127.0.0.1:$$port (log: demo-data/collector.log)"; \
	$(BIN)/rampart-collector --config $(DEMO_CONFIG) init > $(DEMO_DIR)/init.txt || exit 1; \
	$(BIN)/rampart-collector --config $(DEMO_CONFIG) serve > $(DEMO_DIR)/collector.log 2>&1 & collector=$$!; \
	trap 'kill $$collector 2>/dev/null; wait $$collector 2>/dev/null' EXIT; \
	for attempt in $$(seq 1 100); do \
	  $(BIN)/python -c 'import sys, requests; s = requests.Session(); s.trust_env = False; \
	    s.get(sys.argv[1], verify=sys.argv[2], timeout=2).raise_for_status()' \
	    "https://127.0.0.1:$$port/readyz" "$(DEMO_DIR)/collector/tls/ca.pem" 2>/dev/null && break; \
	  [ $$attempt -lt 100 ] || { echo "the collector did not start; see demo-data/collector.log"; exit 1; }; sleep 0.2; \
	done; \
	$(BIN)/rampart-collector --config $(DEMO_CONFIG) enroll-token create --format json \
	  | $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["token"])' > $(DEMO_DIR)/token; \
	echo; echo "== rampart-agent enroll"; \
	$(BIN)/rampart-agent --config $(DEMO_CONFIG) enroll --collector "https://127.0.0.1:$$port" \
	  --token-file $(DEMO_DIR)/token --ca-cert $(DEMO_DIR)/collector/tls/ca.pem || exit 1; \
	rm -f $(DEMO_DIR)/token; \
	echo; echo "== rampart-agent run --once"; \
	$(BIN)/rampart-agent --config $(DEMO_CONFIG) run --once || exit 1; \
	echo; echo "== rampart-agent status"; $(BIN)/rampart-agent --config $(DEMO_CONFIG) status; \
	echo; echo "== rampart-collector summary"; $(BIN)/rampart-collector --config $(DEMO_CONFIG) summary

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
