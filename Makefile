# Spaces: the two commands of a fresh machine with Python 3.11 and pip.
#
#   make serve   set up .venv, execute the snippets, build and serve the site on http://127.0.0.1:8000
#   make test    set up .venv (and Debian's chromium if missing), run the whole test suite
#   make test-fast   the fast tier: everything but the builds and the browser (seconds, not minutes)
#
# The set-up is done once: .venv/.spaces-installed is its stamp, redone when pyproject.toml changes.
# `make build` (strict build into site/) is what the CI workflows publish.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3 || command -v python)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.spaces-installed
SITE   ?= site

export NO_MKDOCS_2_WARNING := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help serve test test-fast test-engine build chromium test-seeds test-shuffled

help:
	@echo "make serve   set up, build and serve the site locally (http://127.0.0.1:8000)"
	@echo "make test    set up and run all tests (installs Debian's chromium if missing)"
	@echo "make test-fast      the fast tier: all tests but the builds (marker slow) and the browser"
	@echo "make test-engine    the engine's unit tests (marker engine): seconds"
	@echo "                    (PYTEST_PARALLEL=\"\" runs test and test-fast in one process)"
	@echo "make test-seeds     the tests that draw random numbers, with 20 seeds (SEEDS=\"...\" to choose)"
	@echo "make test-shuffled  the tests but builds and browser, in 3 shuffled orders"

serve: $(STAMP)
	$(BIN)/spaces serve

# Two pytest-xdist workers (measured on 2 cores: the fast tier ran in a quarter of the serial time on a
# loaded machine). The shared builds (the real site, the mini archive) are made once per run for both
# workers, and each worker runs torch on one thread (tests/conftest.py).
PYTEST_PARALLEL ?= -n 2

test: $(STAMP) chromium
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# The fast tier: unit tests of the engine and the modules, validation, no build, no browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow and not browser"

# The engine's unit tests: the tests of the spaces_build package that run no build and no torch
# (marker `engine`, set in each of these files; anything that builds or imports torch is `slow`).
# The files are named so that pytest does not collect (import) the whole suite to find them.
ENGINE_TESTS := tests/test_spaces_build_engine.py tests/test_spaces_build_plugin.py tests/test_shard.py \
	tests/test_forkserver.py tests/test_mathrender.py
test-engine: $(STAMP)
	$(BIN)/python -m pytest -m engine $(ENGINE_TESTS)

build: $(STAMP)
	$(BIN)/spaces build --site-dir $(SITE)

# .venv with the project and its dev extra; venv first, virtualenv where venv is not available
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no python3 found; install Python 3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make: Python 3.11 or newer is needed, $(PYTHON) is $$($(PYTHON) --version 2>&1)" >&2; exit 1; }
	@if [ ! -x $(BIN)/python ]; then \
		echo "make: creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
			rm -rf $(VENV); \
			$(PYTHON) -m pip install --quiet --user virtualenv && $(PYTHON) -m virtualenv --quiet $(VENV); \
		}; \
	fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

# Debian's chromium for the browser tests, installed only when missing (root, or through sudo)
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "make: installing Debian's chromium for the browser tests"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@command -v chromium >/dev/null 2>&1 || { echo "make: chromium could not be installed" >&2; exit 1; }

# Issue 11: every test that draws random numbers (marker `seeded`, tests/conftest.py) with 20 other
# seeds; a threshold tuned on one stream fails here. Reports every failing seed, exits 1 if any.
SEEDS ?= $(shell seq 1 20)
test-seeds: $(STAMP)
	@failed=""; for s in $(SEEDS); do \
		echo "== SPACES_TEST_SEED=$$s"; \
		SPACES_TEST_SEED=$$s $(BIN)/python -m pytest -q -n 2 -m "seeded and not slow and not browser" \
			-p no:cacheprovider || failed="$$failed $$s"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-seeds: FAILED for seeds:$$failed" >&2; exit 1; fi; \
	echo "test-seeds: passed for all seeds ($(words $(SEEDS)))"

# The suite must not depend on its order: three shuffles (pytest-randomly), builds and browser aside.
test-shuffled: $(STAMP)
	@for s in 101 202 303; do \
		echo "== order seed $$s"; \
		$(BIN)/python -m pytest -q -m "not slow and not browser" -p randomly --randomly-seed=$$s || exit 1; \
	done
