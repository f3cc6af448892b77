# Two commands do all the set-up on a machine with only Python 3.11:
#   make run   - the whole local stack with demo data (embedded Kafka and PostgreSQL)
#   make test  - lint, type checks and the whole test suite (unit, integration, e2e, browser, deploy)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: install run test test-unit test-integration test-e2e lint format k8s-check bench reliability schemas eval eval-api eval-outsider eval-outsider-messy clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/spm up

test: install lint
	BIN=$(BIN) bash scripts/test-suite.sh $(PYTEST_ARGS)
	$(MAKE) k8s-check

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

k8s-check: install
	bash scripts/install-k8s-tools.sh
	bash scripts/k8s-check.sh

schemas: install
	$(BIN)/python -m libs.common.contracts.export

eval: install
	$(BIN)/spm eval attribution --activities 20000

eval-api: install
	$(BIN)/python -m bench.accuracy_api --activities 20000

eval-outsider: install
	$(BIN)/python -m bench.outsider_world --activities 3000

eval-outsider-messy: install
	$(BIN)/python -m bench.outsider_world_messy --activities 3000

bench: install
	$(BIN)/python -m bench.run

reliability: install
	$(BIN)/pytest tests/reliability -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .venv-k8s .spm .pytest_cache .mypy_cache .ruff_cache
