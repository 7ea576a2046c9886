# citysoc: every target sets itself up; `make run` and `make test` are all a fresh machine needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export CITYSOC_DATA ?= ./data

.PHONY: install run lint test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `make run DEMO=1`: fill $(CITYSOC_DATA) with the demo city once (citysoc demo --if-empty), then serve it.
run: $(STAMP)
	$(if $(DEMO),$(BIN)/citysoc demo --if-empty,)
	$(BIN)/citysoc serve --host 127.0.0.1 --port 8000$(if $(DEMO), --config $(CITYSOC_DATA)/citysoc-demo.yml,)

# Lint and types first (rules and strictness in pyproject.toml): seconds, and they catch
# what a refactor broke before the slow suite runs.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m pip install -q -e '.[dev,fuzz]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info
