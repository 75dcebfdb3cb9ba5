# FIND developer commands. `make install` once, then `make test` / `make lint`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install system-deps test lint format run bench

## Create .venv and install FIND with its development tools (PyPI only).
install:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev]'

## Debian packages used by some tests: Chromium (review page in a real browser),
## systemd (systemd-analyze verify on the unit). Tests that need them skip without them.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium systemd >/dev/null

## The test suite (PostgreSQL tests run when FIND_TEST_POSTGRES_URL is set).
test:
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Apply migrations and start the daemon with the settings in .env.
run: install
	$(BIN)/find-bot db upgrade
	$(BIN)/find-bot run

## Benchmarks (numbers and ratios on stdout).
bench:
	$(BIN)/python bench/quota.py
	$(BIN)/python -m bench.queue
	$(BIN)/python bench/scan.py --quick
