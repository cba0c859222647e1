# Two commands: `make demo` runs the bundled demo session, `make test` runs the test suite.
# Each sets up its own virtual environment on a fresh machine first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch's CPU build first, so that botorch does not pull a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test lint docs clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# Tiled's server for tests/system/test_tiled.py (about 0.9 GB and 50 s on top of dev; skip it with TILED=0).
TILED ?= 1
$(VENV)/.installed-tiled: pyproject.toml $(VENV)/.installed-dev
	$(BIN)/python -m pip install -q -e ".[dev,tiled-server]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/closedloop demo --yes

# Debian's redis-server for the queueserver system tests, its postgresql for tests/system/test_postgres.py, and its
# chromium for the web page's browser tests (tests/system/test_web.py; Playwright drives it, no browser download).
# CI runs as root; elsewhere through sudo. The tests start their own servers; the packages' own ones may stay stopped.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@command -v redis-server >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql)
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

test: system-deps $(VENV)/.installed-dev $(if $(filter 1,$(TILED)),$(VENV)/.installed-tiled)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The documentation site, built strictly (a warning or a broken link fails it) into site/.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) sessions site
