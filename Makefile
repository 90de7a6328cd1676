# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export OMP_NUM_THREADS := 1

.PHONY: setup demo test test-slow bench-codec clean

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

bench-codec: $(STAMP)
	$(BIN)/python -m weightinit.benchmarks.codec

clean:
	rm -rf $(VENV) build *.egg-info
