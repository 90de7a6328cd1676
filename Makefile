# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export OMP_NUM_THREADS := 1

.PHONY: setup demo test test-slow bench-codec zoo generator bench bench-report bench-quick clean

$(STAMP): pyproject.toml adapters/template/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned, so no dependency pulls a multi-GB CUDA build (override TORCH_SPEC).
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q -e ./adapters/template
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/weightinit demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The default zoo and the bundled generator, from nothing (hours on a CPU; both resume when rerun).
PROCS ?= 2
zoo: $(STAMP)
	$(BIN)/python -m torch.distributed.run --nproc_per_node $(PROCS) -m weightinit zoo build --out zoo
	$(BIN)/weightinit zoo verify zoo

generator: $(STAMP)
	$(BIN)/weightinit train --zoo zoo --out runs/generator $(if $(wildcard runs/generator/checkpoints/*),--resume,)
	$(BIN)/python -m weightinit.benchmarks.generator --generator runs/generator --zoo zoo --json runs/generator_quality.json
	$(BIN)/python -m weightinit.benchmarks.far_concepts --zoo zoo --generator runs/generator --json docs/measurements/far_concepts.json --write
	$(BIN)/python -m weightinit.benchmarks.heldout_start --zoo zoo --generator runs/generator --json runs/heldout_start.json
	$(BIN)/python -m weightinit.generator.export runs/generator --out weightinit/data/generator --quality runs/generator_quality.json runs/heldout_start.json

# The held-out benchmark on the bundled generator: one process per shard (PROCS), then the
# generator ablations, then docs/BENCHMARKS.md. Resumes per (concept, method) when rerun.
BENCH_OUT ?= runs/bench-full
bench: $(STAMP)
	$(MAKE) -j$(PROCS) $(foreach i,$(shell seq 0 $$(($(PROCS) - 1))),bench-shard-$(i))
	$(BIN)/weightinit bench-ablations --zoo zoo --generator weightinit/data/generator --out $(BENCH_OUT)
	$(MAKE) bench-report

# Regenerate docs/BENCHMARKS.md and the README's results table from the measurement files (seconds);
# BENCH_RESULTS=docs/measurements/bench_full.json redraws them from the saved results alone.
BENCH_RESULTS ?= $(BENCH_OUT)
ABLATIONS ?=
STEP0 ?= docs/measurements/heldout_start_before.json docs/measurements/heldout_start_pooled_text.json docs/measurements/heldout_start.json
bench-report: $(STAMP)
	$(BIN)/weightinit bench-report --results $(BENCH_RESULTS) --out docs/BENCHMARKS.md $(if $(ABLATIONS),--ablations $(ABLATIONS)) $(foreach f,$(STEP0),--step0 $(f)) --readme README.md

bench-shard-%: $(STAMP)
	$(BIN)/weightinit bench --zoo zoo --shard $*/$(PROCS) --out $(BENCH_OUT) --doc $(BENCH_OUT)/BENCHMARKS_$*.md

bench-quick: $(STAMP)
	$(BIN)/weightinit bench --zoo zoo --quick --out runs/bench-quick --json runs/bench_quick.json

bench-codec: $(STAMP)
	$(BIN)/python -m weightinit.benchmarks.codec

clean:
	rm -rf $(VENV) build *.egg-info
