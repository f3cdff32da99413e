# `make test` and `make demo` work on a fresh machine with only python3 and pip:
# they bootstrap uv into .uv-bootstrap/ and build .venv/ from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .uv-bootstrap/bin/uv)
VENV_STAMP := .venv/.synced

.PHONY: test lint format demo demo2d env bench clean docs docs-serve

.uv-bootstrap/bin/uv:
	$(PYTHON) -m venv .uv-bootstrap
	.uv-bootstrap/bin/pip install --quiet uv

$(VENV_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $(VENV_STAMP)

env: $(VENV_STAMP)

# ruff check, and ruff format --check: CI fails on unformatted code (`make format` formats it).
lint: $(VENV_STAMP)
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .

format: $(VENV_STAMP)
	$(UV) run --frozen --no-sync ruff format .

# Two pytest-xdist workers, one test file each at a time (the Slurm tests share one cluster per file).
test: $(VENV_STAMP)
	$(UV) run --frozen --no-sync pytest -q -n 2 --dist loadfile

# The documentation site (mkdocs.yml): fails on a stale generated reference (scripts/gen_docs.py rewrites them),
# then builds strictly into site/ (a broken link or anchor, a missing page or any warning fails).
docs: $(VENV_STAMP)
	$(UV) run --frozen --no-sync python scripts/gen_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(UV) run --frozen --no-sync mkdocs build --strict --site-dir site

# Serves the site at http://127.0.0.1:8000 and rebuilds it on every change.
docs-serve: $(VENV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(UV) run --frozen --no-sync mkdocs serve

demo: $(VENV_STAMP)
	$(UV) run --frozen --no-sync scripts/demo.sh

demo2d: $(VENV_STAMP)
	$(UV) run --frozen --no-sync scripts/demo.sh 2d

clean:
	rm -rf .venv .uv-bootstrap
