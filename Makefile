# groundcache: every target runs inside .venv (made by `make setup`, which the other targets call first).
# `make help` lists the targets and the variables they take.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.installed
# The CPU build of torch where no NVIDIA GPU is present (a local wheel is used first when pip has one).
TORCH_PIP_ARGS ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,--extra-index-url https://download.pytorch.org/whl/cpu)

# extraction inputs and outputs (override on the command line: make extract MANIFEST=... STORE=...)
DATA     ?= data
SAMPLE   := $(DATA)/sample
MANIFEST ?= $(SAMPLE)/manifest
STORE    ?= $(SAMPLE)/store.zarr
ENCODERS ?= clip,s3d
PRESET   ?= tiny
BACKEND  ?= sequential
WORKERS  ?= 2
EXTRACT_ARGS ?=

.PHONY: help setup test test-fast demo compare paper-tables extract verify bench bench-extract bench-disk bench-scale clean
comma := ,

help: ## list the targets
	@echo "groundcache targets (variables in CAPS can be overridden: make extract STORE=/path/store.zarr):"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv in the repo and install groundcache with every extra (CPU torch without a GPU)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.13.0" $(TORCH_PIP_ARGS)
	$(PIP) install -q -e ".[extract,train,eval,s3,dev]"
	# The real CLIP BPE vocabulary ships in open_clip's wheel; it is read as a file (its package needs torchvision).
	$(PIP) install -q --no-deps "open_clip_torch==3.3.0"
	touch $(STAMP)

test: setup ## run the whole test suite (unit + end-to-end on generated videos, CPU only)
	$(PY) -m pytest -q tests

test-fast: setup ## unit tests only (skips the slow end-to-end tier)
	$(PY) -m pytest -q -m "not slow" tests

DEMO_OUT  ?= $(DATA)/demo
DEMO_ARGS ?=

demo: setup ## the whole system on a generated world: extract, train, evaluate vs baselines, pictures (DEMO_OUT, DEMO_ARGS)
	$(PY) -m eval.drivers.demo --out $(DEMO_OUT) $(DEMO_ARGS)

PAPER_OUT  ?= $(DATA)/paper-tables
PAPER_ARGS ?=

paper-tables: setup ## the STG paper's ablation Tables 5, 6, 8, 9, 10, 12, 13 on the demo world next to its numbers; resumable (PAPER_OUT, PAPER_ARGS="--steps 250 --tables 5,6")
	$(PY) -m eval.drivers.paper_tables --out $(PAPER_OUT) $(PAPER_ARGS)

COMPARE_OUT  ?= $(DATA)/compare
COMPARE_ARGS ?=

compare: setup ## every registered method (stg, comma, coot, wsra) trained with one budget on one store, one table with the baselines (COMPARE_ARGS)
	$(PY) -m eval.drivers.compare --out $(COMPARE_OUT) $(COMPARE_ARGS)

$(SAMPLE)/manifest/manifest.json: | setup
	$(PY) -m manifests.sample --out $(SAMPLE)

# The generated sample is made only when MANIFEST is left at its default.
extract: setup $(if $(filter $(SAMPLE)/manifest,$(MANIFEST)),$(SAMPLE)/manifest/manifest.json) ## extract features of MANIFEST into STORE (default: a generated sample, tiny encoders)
	$(PY) -m pipeline.extract --manifest $(MANIFEST) --store $(STORE) --encoders $(ENCODERS) --preset $(PRESET) \
		--backend $(BACKEND) --workers $(WORKERS) $(EXTRACT_ARGS)

verify: setup ## check that every MANIFEST segment has features or a failure record in STORE, none twice
	$(PY) -m pipeline.verify --store $(STORE) --manifest $(MANIFEST)

bench: bench-extract bench-disk bench-train ## every benchmark but the scale one: extraction, disk cost, training

bench-extract: setup ## extraction speed and memory side by side (decode, encode, pipeline, naive baselines)
	$(PY) -m pipeline.bench --out $(DATA)/bench

bench-disk: setup ## bytes on disk per video-second per encoder group (float16 and int8 grids), HowTo100M projection
	$(PY) -m pipeline.bench_disk

SCALE_SIZES ?= 10000,100000,1200000

bench-scale: setup ## the store at HowTo100M size (1.2M videos x 113 narrations): open, read, worker memory, S3 requests
	$(PY) -m pipeline.bench_scale --sizes $(SCALE_SIZES) --narrations-per-video 113 --out $(DATA)/bench-scale --s3
	$(PY) -m trainer.bench_narrations --store $(DATA)/bench-scale/$(lastword $(subst $(comma), ,$(SCALE_SIZES))).zarr

clean: ## remove generated data (not .venv)
	rm -rf $(SAMPLE) $(DATA)/bench $(DATA)/bench-scale $(DEMO_OUT) $(COMPARE_OUT)

# training (override on the command line: make train STORE=... RUN=... TRAIN_PRESET=paper-clip TRAIN_ARGS="optim.lr=3e-4")
TRAIN_PRESET ?= tiny
RUN          ?= $(DATA)/runs/$(TRAIN_PRESET)
TRAIN_ARGS   ?=

.PHONY: train bench-train

train: setup ## train a head on STORE into RUN (TRAIN_PRESET: tiny, demo, paper-clip, paper-s3d, reference, comma, comma-paper, comma-demo, comma-paper-demo, comma-tiny, coot, coot-tiny, coot-paper-tiny, wsra, wsra-paper, wsra-tiny, wsra-paper-tiny; TRAIN_ARGS: key=value ... or --resume)
	$(PY) -m trainer.train --store $(STORE) --out $(RUN) --preset $(TRAIN_PRESET) $(TRAIN_ARGS)

bench-train: setup ## trainer speed and memory side by side: naive vs batched attention, training and loader samples/s
	$(PY) -m trainer.methods.stg.bench --out $(DATA)/bench

# evaluation: inference of the trained head in RUN on the benchmark videos' features in STORE, then scoring
# against the annotation files in BENCH (make eval-gyt RUN=data/runs/x STORE=data/gyt.zarr BENCH=data/benchmarks
# PROTOCOL=reference EVAL_ARGS="--missing miss temporal.threshold=0.6"); writes RUN/eval/<task>-<protocol>/
BENCH     ?= $(DATA)/benchmarks
PROTOCOL  ?= paper
EVAL_ARGS ?=

define eval_task
	@test -d "$(BENCH)" || { echo "error: BENCH=$(BENCH) is not a directory: set BENCH to the folder holding the benchmark annotation files (e.g. a synthetic world's test/benchmarks from python -m manifests.synth)" >&2; exit 2; }
	$(PY) -m eval.run $(1) --run $(RUN) --store $(STORE) --benchmark-dir $(BENCH) --protocol $(PROTOCOL) $(EVAL_ARGS)
endef

.PHONY: eval-gyt eval-gyt-spatial eval-yc eval-myt viz

eval-gyt: setup ## GroundingYouTube untrimmed spatio-temporal grounding of RUN on STORE (BENCH, PROTOCOL, EVAL_ARGS)
	$(call eval_task,gyt)

eval-gyt-spatial: setup ## GroundingYouTube spatial grounding with ground-truth segments (BENCH, PROTOCOL, EVAL_ARGS)
	$(call eval_task,gyt-spatial)

eval-yc: setup ## YouCook2-Interactions pointing game (frame sizes other than 640x360: EVAL_ARGS="--sizes F")
	$(call eval_task,youcook)

eval-myt: setup ## MiningYouTube temporal alignment: IoU, IoD, MoF (BENCH, PROTOCOL, EVAL_ARGS)
	$(call eval_task,mining)

# pictures of RUN's evaluation predictions (make eval-gyt-spatial / eval-gyt first) on the evaluation MANIFEST
VIZ_OUT ?= $(RUN)/pictures

viz: setup ## heatmap overlays (PNG + MP4), step timelines and training curves of RUN (MANIFEST: the eval manifest)
	$(PY) -m eval.viz curves --run $(RUN) --out $(VIZ_OUT)/curves.png
	@if [ -f $(RUN)/eval/gyt-spatial-$(PROTOCOL)/predictions.h5 ]; then \
		$(PY) -m eval.viz overlay --predictions $(RUN)/eval/gyt-spatial-$(PROTOCOL)/predictions.h5 --manifest $(MANIFEST) --out $(VIZ_OUT) --mp4; fi
	@if [ -f $(RUN)/eval/gyt-$(PROTOCOL)/predictions.h5 ]; then \
		$(PY) -m eval.viz timeline --predictions $(RUN)/eval/gyt-$(PROTOCOL)/predictions.h5 --manifest $(MANIFEST) --out $(VIZ_OUT); fi
