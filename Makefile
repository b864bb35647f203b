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
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.zslkit-installed

.PHONY: demo test install install-dev lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Installs the package, the dev, docs and text extras and the example plugin (editable).
$(STAMP): pyproject.toml plugins/zslkit-example-plugin/pyproject.toml | $(BIN)/python
	$(PIP) install -q $(TORCH_SPEC) -e ".[dev,docs,text]" -e plugins/zslkit-example-plugin
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zslkit bench --dataset synthetic --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check zslkit tests plugins benchmarks

docs: $(STAMP)
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) site runs .pytest_cache
