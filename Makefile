# Two entry points: `make demo` (main job on the offline default model) and `make test`.
# Both create .venv on first use; torch is pinned first so pip takes the local CPU build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench lite-model preclip-model clean browser

# clip-retrieval's client and its built web front, for the `cliplab serve` tests: its wheel ships
# front/build/. Unpacked, not installed (its own dependencies are not needed for that).
CR_VERSION := 2.45.0
CR_DIR := $(VENV)/clip-retrieval
CR_STAMP := $(CR_DIR)/.unpacked-$(CR_VERSION)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	# open_clip model zoo: --no-deps, or pip pulls torchvision and a CUDA torch over the CPU one (issue 26)
	$(BIN)/pip install -q --no-deps open-clip-torch==3.3.0 timm==1.0.31 sentencepiece==0.2.3 ftfy==6.3.1 wcwidth==0.9.4
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python tools/demo.py

test: $(STAMP) $(CR_STAMP) browser lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# Lint + format check (rules in pyproject.toml [tool.ruff]); `ruff check --fix` and `ruff format` repair.
LINT_PATHS := cliplab tests benchmarks tools
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

$(CR_STAMP): | $(STAMP)
	rm -rf $(CR_DIR) && mkdir -p $(CR_DIR)
	$(BIN)/pip download -q --no-deps --only-binary :all: clip-retrieval==$(CR_VERSION) -d $(CR_DIR)
	$(BIN)/python -m zipfile -e $(CR_DIR)/clip_retrieval-$(CR_VERSION)-py3-none-any.whl $(CR_DIR)
	test -f $(CR_DIR)/clip_retrieval/clip_client.py && test -f $(CR_DIR)/front/build/index.html
	touch $@

# Debian's chromium for the real-browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Retrain the shipped `lite` heads (fused with ConSE) from ../shared/data (a few minutes on 2 cores);
# same inputs → same bytes, and an unchanged model is left untouched.
lite-model: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python tools/lite_recipe.py
	HF_HUB_OFFLINE=1 $(BIN)/python tools/lite_int8_calibrate.py

preclip-model: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python tools/preclip_reference.py

bench: $(STAMP)
	for b in embed_throughput lite_select lite_quality eval_all index_bench analyze_bench; do HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
