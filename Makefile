# diffusion-notes: every target sets itself up (virtual environment, packages) first.
#   make serve   set up, execute the labs, build, serve on http://127.0.0.1:8000
#   make site    the same, static output in site/
#   make test    set up (also Debian's chromium for the browser tests), run every test
#   make bench   run the benchmarks (results in bench/results/)
#
# torch: the CPU build is installed first, pinned, so that nothing later pulls a multi-GB
# CUDA build. Set TORCH_INDEX to a PyTorch CPU wheel index where plain PyPI would give CUDA.

export NO_MKDOCS_2_WARNING := 1

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.diffusion-notes-installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup serve site test bench browser-deps lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml src/diffusion_notes/site/vendor.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then echo "torch already installed"; \
	elif [ -n "$(TORCH_INDEX)" ]; then $(PY) -m pip install --quiet "torch==$(TORCH_VERSION)" --index-url "$(TORCH_INDEX)"; \
	else $(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"; fi
	$(PY) -m pip install --quiet -e ".[docs,dev]"
	$(PY) -m diffusion_notes.site.vendor
	@touch $(STAMP)

serve: setup
	$(PY) -m mkdocs serve --strict --dev-addr $(HOST):$(PORT)

# Build into a scratch folder and swap: a failing build never leaves a half-written site/.
site: setup
	rm -rf .site-tmp
	$(PY) -m mkdocs build --strict --site-dir .site-tmp
	rm -rf site && mv .site-tmp site
	@echo "site built in site/ (open site/index.html through a web server, e.g. make serve)"

browser-deps:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	    echo "could not install Debian's chromium: the browser tests will be skipped"; }

test: setup browser-deps
	$(PY) -m pytest

bench: setup
	$(PY) bench/site_build.py

lint: setup
	$(PY) -m ruff check src tests bench

clean:
	rm -rf site .site-tmp .cache
