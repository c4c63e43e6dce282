# Two entry points: `make demo` (main job on the offline default model) and `make test`.
# Both create .venv on first use; torch is pinned first so pip takes the local CPU build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench lite-model clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m cliplab.demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Retrain the shipped `lite` heads from ../shared/data (about 2-3 minutes on 2 cores).
lite-model: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m cliplab.train.lite_recipe

bench: $(STAMP)
	for b in embed_throughput lite_quality lite_heldout eval_all index_bench analyze_bench; do HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
