# The two commands of the README are the contract: each does all of its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
LINT_DIRS := $(wildcard src tests bench)

.PHONY: run run-services test lint format proto services bench bench-quick bench-tools clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,browse]'
	@touch $(STAMP)

# The benchmarks' peers (eventsourcing, Pathway, Bytewax) are large: only `make bench*`
# installs them.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,browse,bench]'
	@touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/oddstream serve --demo

# Services mode on the local PostgreSQL, NATS and Redis (started if stopped).
run-services: $(STAMP)
	@bash scripts/ensure-services.sh
	$(BIN)/oddstream up --api 2 --workers 2

test: $(STAMP) services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The Python code of proto/*.proto, committed under src/oddstream/pb (docs/protobuf.md)
proto: $(STAMP)
	$(BIN)/python scripts/proto.py

services:
	@bash scripts/ensure-services.sh
	@bash scripts/ensure-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format $(LINT_DIRS)
	$(BIN)/ruff check --fix $(LINT_DIRS)

bench: $(BENCH_STAMP) services bench-tools
	$(BIN)/python bench/store.py
	$(BIN)/python bench/tote.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/odds.py
	$(BIN)/python bench/wallet.py
	$(BIN)/python bench/restart.py

bench-quick: $(BENCH_STAMP) services bench-tools
	$(BIN)/python bench/store.py --quick
	$(BIN)/python bench/tote.py --quick
	$(BIN)/python bench/api.py --quick
	$(BIN)/python bench/odds.py --quick
	$(BIN)/python bench/wallet.py --quick
	$(BIN)/python bench/restart.py --quick

# bench/api.py and bench/wallet.py drive the server with Debian's wrk
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get install -y -q wrk >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1)) \
	  || echo "  wrk: missing (apt-get install wrk); bench/api.py case a will say so"; }

# Only what the other targets regenerate: the venv, caches, build outputs. Never data/ nor
# any *.db: data/ is the default event store, a ledger, which no make target deletes.
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist src/*.egg-info
	find $(LINT_DIRS) -name __pycache__ -type d -prune -exec rm -rf {} +
