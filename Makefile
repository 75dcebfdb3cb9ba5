# FIND developer commands. `make install` once, then `make test` / `make lint`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install system-deps test lint format run bench train-default evaluate-default

## Create .venv and install FIND with its development tools (PyPI only).
install:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev,train]'
	$(BIN)/python -m model.training.landmarks --fetch

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

## Benchmarks, short runs (numbers and ratios on stdout). The full runs are in
## README.md's benchmark table; bench.claims measures SQLite unless
## FIND_TEST_POSTGRES_URL names a PostgreSQL database.
bench:
	$(BIN)/python bench/quota.py --quick
	$(BIN)/python -m bench.claims
	$(BIN)/python bench/scan.py --quick
	$(BIN)/python bench/banks.py --quick

## ---------------------------------------------------------------- the default bundle
## How model/bundles/default was made (docs/training.md, "The default bundle").
## DATA is the real face data (../shared/data); ENSEMBLE the two candidates chosen
## by validation AUC and false alarms on unseen real footage.
DATA        ?= ../shared/data
DEFAULT_RUN ?= runs/default
ENSEMBLE    ?= 0,2
FALSE_ALARMS ?= 0.05
BUNDLE      ?= model/bundles/default
TERMS = Trained on DFDC face crops (Deepfake Detection Challenge, Meta/Kaggle 2020, research use) \
	and real clips from GRID (CC BY 4.0), LRS2 (BBC, research use) and MEAD (research use); \
	the terms of those datasets apply to these weights.
TRAIN_DEFAULT = $(BIN)/find-bot train \
	--data faces:$(DATA)/dfdc-faces --data real:$(DATA)/real-videos/grid \
	--data real:$(DATA)/real-videos/lrs2 --data real:$(DATA)/real-videos/mead \
	--arch compact --input-size 96 --width 0.35 --middle-blocks 2 \
	--cache-dir runs/cache --cache-crop-size 128 \
	--epochs 2 --steps-per-epoch 600 --batch-size 32 \
	--candidates 3 --candidate-modes supervised,sbi,mixed \
	--name find-default --terms "$(TERMS)" --out $(DEFAULT_RUN) --quiet --resume

## Train the three candidates side by side (one single-threaded process each: on
## 2 cores that beats one process with 2 threads), then join the chosen two.
train-default: install
	pids=""; for i in 0 1 2; do \
		TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 $(TRAIN_DEFAULT) --only-candidates $$i & \
		pids="$$pids $$!"; done; \
	for p in $$pids; do wait $$p || exit 1; done
	$(TRAIN_DEFAULT) --ensemble $(ENSEMBLE) --max-false-alarm-rate $(FALSE_ALARMS)

## Measure BUNDLE on the shared data and record the numbers in its manifest.
## Real footage: voxceleb2, misc and real-photos were never trained on.
EVAL = $(BIN)/find-bot evaluate --cache-dir runs/eval-cache --quiet
evaluate-default: install
	$(EVAL) $(BUNDLE) faces:$(DATA)/dfdc-faces --split test --out $(DEFAULT_RUN)/eval/dfdc-faces-test --record dfdc-faces-test
	$(EVAL) $(BUNDLE) dfdc:$(DATA)/dfdc-videos --out $(DEFAULT_RUN)/eval/dfdc-videos --record dfdc-videos
	for set in voxceleb2 misc grid lrs2 mead; do \
		$(EVAL) $(BUNDLE) real:$(DATA)/real-videos/$$set --out $(DEFAULT_RUN)/eval/real-videos-$$set \
			--record real-videos-$$set || exit 1; done
	$(EVAL) $(BUNDLE) real:$(DATA)/real-photos --out $(DEFAULT_RUN)/eval/real-photos --record real-photos
