# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# PyTorch's CPU wheel index, as its install selector gives it (Linux, pip, CPU).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export OMP_NUM_THREADS := 1

.PHONY: setup demo test bench-codec zoo generator bench bench-report bench-quick clean

GENERATOR_PACKAGES := $(wildcard generators/*/pyproject.toml)

$(STAMP): pyproject.toml adapters/template/pyproject.toml $(GENERATOR_PACKAGES) .ci/install-torch
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned and CPU-only unless TORCH_INDEX says otherwise, so no dependency pulls a
	# multi-GB CUDA build: a wheel pip finds locally if there is one, else PyTorch's CPU index.
	TORCH_SPEC="$(TORCH_SPEC)" TORCH_INDEX="$(TORCH_INDEX)" bash .ci/install-torch $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q -e ./adapters/template
	# the generators beyond the bundled one are packages of their own (generators/NAME)
	$(BIN)/python -m pip install -q $(foreach p,$(GENERATOR_PACKAGES),-e ./$(dir $(p)))
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/weightinit demo

test: $(STAMP)
	$(BIN)/ruff check weightinit experiments tests generators adapters examples
	$(BIN)/ruff format --check weightinit experiments tests generators adapters examples
	$(BIN)/python -m pytest -q

# The default zoo and the bundled generator, from nothing (hours on a CPU; both resume when rerun).
PROCS ?= 2
zoo: $(STAMP)
	$(BIN)/python -m torch.distributed.run --nproc_per_node $(PROCS) -m weightinit zoo build --out zoo
	$(BIN)/weightinit zoo verify zoo

generator: $(STAMP)
	$(BIN)/weightinit train --zoo zoo --out runs/generator $(if $(wildcard runs/generator/checkpoints/*),--resume,)
	$(BIN)/python -m experiments.generator --generator runs/generator --zoo zoo --json runs/generator_quality.json
	$(BIN)/python -m experiments.far_concepts --zoo zoo --generator runs/generator --json docs/measurements/far_concepts.json --write
	$(BIN)/python -m experiments.composed_prior --zoo zoo --generator runs/generator --json docs/measurements/composed_prior.json --write
	$(BIN)/python -m experiments.heldout_start --zoo zoo --generator runs/generator --json runs/heldout_start.json
	$(BIN)/python -m weightinit.generator.export runs/generator --out weightinit/data/generator --quality runs/generator_quality.json runs/heldout_start.json

# The held-out benchmark on the bundled generator: one process per shard (PROCS), then the
# generator ablations, then docs/BENCHMARKS.md. Resumes per (concept, method) when rerun.
BENCH_OUT ?= runs/bench-full
bench: $(STAMP)
	$(MAKE) -j$(PROCS) $(foreach i,$(shell seq 0 $$(($(PROCS) - 1))),bench-shard-$(i))
	$(BIN)/python -m experiments.bench ablations --zoo zoo --generator weightinit/data/generator --out $(BENCH_OUT)
	$(MAKE) bench-report

# Regenerate docs/BENCHMARKS.md and the README's results table from the measurement files (seconds);
# BENCH_RESULTS=docs/measurements/bench_full.json redraws them from the saved results alone.
BENCH_RESULTS ?= $(BENCH_OUT)
ABLATIONS ?=
STEP0 ?= docs/measurements/heldout_start_before.json docs/measurements/heldout_start_pooled_text.json docs/measurements/heldout_start_directional.json docs/measurements/heldout_start_loo_target.json $(wildcard docs/measurements/heldout_start_rank64.json) docs/measurements/heldout_start.json $(wildcard docs/measurements/heldout_start_loo_target_full_rank.json docs/measurements/heldout_start_resnet9_rank64.json) $(STEP0_REFERENCE)
# The reference generators' step 0, where measured (`make generator-NAME`), also per concept.
STEP0_REFERENCE = $(wildcard $(foreach g,$(REFERENCE_GENERATORS),docs/measurements/heldout_start_$(g).json))
# Further benchmarks, a section each, where measured: the reference generators' (`make bench-NAME`),
# and the reruns of `python -m experiments.rerun_methods` (docs/reproducing.md).
OTHER_BENCH ?= $(wildcard docs/measurements/bench_selection.json docs/measurements/fixed_budget_*.json $(foreach g,$(REFERENCE_GENERATORS),docs/measurements/bench_$(g).json))
# The seed spread (issue 16 §4): seeds 1 and 2 `python -m experiments.bench run --seed N`, with seed 0 the rerun made with
# the same (rank-64) generator as they were, bench_selection_rank64.json.
SEED_SPREAD ?= $(if $(wildcard docs/measurements/bench_seed*.json),docs/measurements/bench_selection_rank64.json $(wildcard docs/measurements/bench_seed*.json))
# The report's sections, one a line, in the order they appear: NAME=FILE, where NAME's section is the
# `section` function of the experiment that wrote FILE (experiments/bench/report.py, SECTIONS).
BENCH_SECTIONS = \
	$(foreach f,$(STEP0),step0=$(f)) \
	$(foreach f,$(STEP0_REFERENCE),step0-table=$(f)) \
	$(foreach f,$(wildcard docs/measurements/prior_rank.json docs/measurements/prior_rank_*.json),prior-rank=$(f)) \
	composition=docs/measurements/composed_prior.json \
	selection=docs/measurements/pair_selection.json \
	$(foreach f,$(OTHER_BENCH),other=$(f)) \
	$(foreach f,$(SEED_SPREAD),seed-spread=$(f)) \
	$(foreach f,$(wildcard docs/measurements/crop_size_*.json),crop-size=$(f)) \
	$(if $(wildcard docs/measurements/start_recipe.json),start-recipe=docs/measurements/start_recipe.json) \
	directions=docs/measurements/cyclegan_directions.json \
	$(if $(ABLATIONS),ablations=$(ABLATIONS))
bench-report: $(STAMP)
	$(BIN)/python -m experiments.bench report --results $(BENCH_RESULTS) --out docs/BENCHMARKS.md --readme README.md \
		$(addprefix --section ,$(BENCH_SECTIONS))

bench-shard-%: $(STAMP)
	$(BIN)/python -m experiments.bench run --zoo zoo --shard $*/$(PROCS) --out $(BENCH_OUT) --doc $(BENCH_OUT)/BENCHMARKS_$*.md

bench-quick: $(STAMP)
	$(BIN)/python -m experiments.bench run --zoo zoo --quick --out runs/bench-quick --json runs/bench_quick.json

# The wheel a user installs: at most 40 MB, installed alone outside the checkout, initialising the
# default network offline (.ci/wheel-check; minutes, so not part of `make test`).
.PHONY: wheel-check
wheel-check: $(STAMP)
	PYTHON=$(BIN)/python TORCH_SPEC="$(TORCH_SPEC)" bash .ci/wheel-check

bench-codec: $(STAMP)
	$(BIN)/python -m experiments.codec

clean:
	rm -rf $(VENV) build *.egg-info

# Full-size generators on GPUs (docs/gpu.md): a pix2pix zoo + generator (unet_256, ngf 64, batch norm,
# dropout) and a CycleGAN one (resnet_9blocks, ngf 64, instance norm) at 256 px, from nothing, each
# exported under weightinit/data/generators/ with a package in generators/ (installed). Rerun to resume (on any GPU). GPUS x PER_GPU build
# processes share the GPUs; IMAGES=DIR uses your photos (>= 256 px) instead of the bundled ones,
# upscaled; GPU_LIMIT=N builds only the first N concepts; GPU_EXTRA passes more `zoo build` options.
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
PER_GPU ?= 4
GPU_DEVICE ?= cuda
GPU_OUT ?= runs/gpu
GPU_INSTALL ?= weightinit/data/generators
GPU_ARCHS ?= unet256=pix2pix:unet_256,ngf=64,norm=batch,dropout=true resnet9=pix2pix:resnet_9blocks,ngf=64,norm=instance
GPU_EXTRA ?=
GPU_TRAIN_EXTRA ?=

.PHONY: gpu-defaults
gpu-defaults: $(STAMP)
	@test "$(GPUS)" -gt 0 2>/dev/null || { echo "gpu-defaults: no GPU found (nvidia-smi -L lists none); set GPUS=N"; exit 1; }
	set -e; for spec in $(GPU_ARCHS); do name=$${spec%%=*}; arch=$${spec#*=}; out=$(GPU_OUT)/$$name; \
	  $(BIN)/python -m torch.distributed.run --standalone --nproc_per_node $$(( $(GPUS) * $(PER_GPU) )) -m weightinit zoo build \
	    --out $$out/zoo --arch $$arch --image-size 256 --device $(GPU_DEVICE) --mixed-precision auto \
	    $(if $(IMAGES),--images $(IMAGES),) $(if $(GPU_LIMIT),--limit $(GPU_LIMIT),) $(GPU_EXTRA); \
	  $(BIN)/weightinit zoo verify $$out/zoo; \
	  $(BIN)/python -m torch.distributed.run --standalone --nproc_per_node $(GPUS) -m weightinit train \
	    --zoo $$out/zoo --out $$out/generator --device $(GPU_DEVICE) $(GPU_TRAIN_EXTRA) \
	    $$(test -d $$out/generator/checkpoints && echo --resume); \
	  $(BIN)/python -m weightinit.generator.export $$out/generator --out $(GPU_INSTALL)/$$name; \
	  $(BIN)/python -m experiments.generator_package $$name && $(BIN)/python -m pip install -q -e ./generators/$$name; \
	done

# Generators for networks that the reference pytorch-CycleGAN-and-pix2pix code builds with its own
# flags (README, "With the reference code"), each zoo under about 8 CPU-hours: a pix2pix U-Net
# (`--netG unet_128 --ngf 16 --norm batch`, 128 px) and a CycleGAN ResNet (`--netG resnet_9blocks
# --ngf 8 --norm instance --no_dropout`, trained on 64-px crops, used at any size). `make zoo-NAME`
# builds (or resumes) zoo-NAME/; `make generator-NAME` trains, measures and exports its generator
# to weightinit/data/generators/NAME, with its package generators/NAME (installed; `initialize` finds it
# through `register_generators`).
REFERENCE_GENERATORS := unet128 resnet9
ZOO_ARGS_unet128 := --arch pix2pix:unet_128,ngf=16,norm=batch --image-size 128 --batch-size 4 --base-steps 3000 --concept-steps 300
ZOO_ARGS_resnet9 := --arch pix2pix:resnet_9blocks,ngf=8,norm=instance --image-size 64 --batch-size 8 --base-steps 4000 --base-lr 5e-4 --concept-steps 200

.PHONY: $(addprefix zoo-,$(REFERENCE_GENERATORS)) $(addprefix generator-,$(REFERENCE_GENERATORS)) $(addprefix bench-,$(REFERENCE_GENERATORS))
$(addprefix zoo-,$(REFERENCE_GENERATORS)): zoo-%: $(STAMP)
	$(BIN)/python -m torch.distributed.run --nproc_per_node $(PROCS) -m weightinit zoo build --out zoo-$* $(ZOO_ARGS_$*)
	$(BIN)/weightinit zoo verify zoo-$*

$(addprefix generator-,$(REFERENCE_GENERATORS)): generator-%: $(STAMP)
	$(BIN)/weightinit train --zoo zoo-$* --out runs/generator-$* $(if $(wildcard runs/generator-$*/checkpoints/*),--resume,)
	$(BIN)/python -m experiments.generator --generator runs/generator-$* --zoo zoo-$* --json runs/generator-$*_quality.json
	$(BIN)/python -m experiments.far_concepts --zoo zoo-$* --generator runs/generator-$* --json docs/measurements/far_concepts_$*.json --write
	$(BIN)/python -m experiments.composed_prior --zoo zoo-$* --generator runs/generator-$* --json docs/measurements/composed_prior_$*.json --write
	$(BIN)/python -m experiments.heldout_start --zoo zoo-$* --generator runs/generator-$* --json docs/measurements/heldout_start_$*.json
	$(BIN)/python -m weightinit.generator.export runs/generator-$* --out weightinit/data/generators/$* --quality runs/generator-$*_quality.json docs/measurements/heldout_start_$*.json
	$(BIN)/python -m experiments.generator_package $* && $(BIN)/python -m pip install -q -e ./generators/$*

# Their time-to-quality benchmark, LoRA-only, on 8 held-out concepts of each zoo: every
# (count / 8)-th in zoo order, as `--quick` spreads its concepts (the first 8 are all strengths);
# nothing chosen. `make bench-report` then gives each a section. A CPU run takes longer than one
# session (scratch's 4000 steps at 128 px are about half an hour a concept), so the runs are kept in
# $(REFERENCE_BENCH_RUNS)/NAME, tracked like the zoos: commit it as it grows, and rerunning resumes per
# (concept, method). PROCS shards run side by side; the last call trains nothing and writes the JSON.
REFERENCE_BENCH_METHODS ?= scratch,lora,mean_lora,nearest_lora,generated_1_lora,chosen_1_lora,oracle_lora
REFERENCE_BENCH_RUNS ?= bench-runs
$(addprefix bench-,$(REFERENCE_GENERATORS)): bench-%: $(STAMP)
	set -e; concepts=$$($(BIN)/python -c "from experiments.bench.runner import spread; from weightinit.zoo.weights import ZooWeights; print(','.join(spread(ZooWeights('zoo-$*').ids('heldout'), 8)))"); \
	bench="$(BIN)/python -m experiments.bench run --zoo zoo-$* --generator weightinit/data/generators/$* --mode lora --methods $(REFERENCE_BENCH_METHODS) --concepts $$concepts --out $(REFERENCE_BENCH_RUNS)/$*"; \
	pids=; for i in $$(seq 0 $$(($(PROCS) - 1))); do $$bench --shard $$i/$(PROCS) & pids="$$pids $$!"; done; \
	for p in $$pids; do wait $$p; done; \
	$$bench --json docs/measurements/bench_$*.json
