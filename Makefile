# zslkit: two commands do everything -- `make demo` and `make test`.
#
# TORCH_SPEC picks the PyTorch build. The default is the pair that installs from
# this project's CI machines without a network download and that timm can import:
# PyPI's torchvision wheels link against CUDA torch libraries, so the CPU-only
# torch==2.13.0 wheel has no importable torchvision beside it and timm (which
# imports torchvision) would fail. torch 2.14.1 + torchvision 0.29.1 run on the CPU.
# Any torch >= 2.4 with a matching torchvision works, e.g.
#   make test TORCH_SPEC="torch==2.13.0 torchvision==0.28.0 --extra-index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
# quiet pip: no progress bars, no "new pip available", no script-location warnings; errors still show
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PIP_INSTALL := $(PIP) install --no-warn-script-location --progress-bar off
# what `make demo` needs: zslkit with its clip extra (CPU PyTorch) and the example plugin, both editable
DEMO_STAMP := $(VENV)/.zslkit-demo
# what `make test` and `make lint` add: the dev (pytest, ruff, triton), docs (mkdocs) and text
# (sentence-transformers) extras
TEST_STAMP := $(VENV)/.zslkit-test

# the CLIP rows, run by `make demo` through a tiny random-init CLIP: a plumbing check (docs/clip.md)
CLIP_ROWS := clip_names,clip_attributes,clip_linear

.PHONY: demo test install install-dev lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip

$(DEMO_STAMP): pyproject.toml plugins/zslkit-example-plugin/pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) $(TORCH_SPEC) -e ".[clip]" -e plugins/zslkit-example-plugin
	touch $(DEMO_STAMP)

$(TEST_STAMP): $(DEMO_STAMP)
	$(PIP_INSTALL) $(TORCH_SPEC) -e ".[dev,docs,text]"
	touch $(TEST_STAMP)

install: $(DEMO_STAMP)

install-dev: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/zslkit bench --dataset synthetic --out runs/demo
	$(BIN)/zslkit bench --dataset synthetic_images --dataset-option images_per_class=10 --model $(CLIP_ROWS) --clip zslkit-tiny --clip-random-init --out runs/demo-clip
	@echo "zslkit is installed in $(VENV): run $(BIN)/zslkit --help, or 'source $(BIN)/activate' and then 'zslkit --help'"

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(TEST_STAMP)
	$(BIN)/ruff check zslkit tests plugins benchmarks

docs: $(TEST_STAMP)
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) site runs .pytest_cache
