# Two commands for a fresh machine: `make run` (the whole pipeline on embedded defaults) and
# `make test` (everything CI runs). Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint unit integration integration-embedded bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ledger demo

test: lint unit integration integration-embedded

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Against the machine's PostgreSQL (127.0.0.1:5432) and a real Kafka-compatible broker (Tansu).
integration: $(STAMP)
	LEDGER_TEST_PG=system $(BIN)/pytest -q tests/integration

# The same database tests against a real embedded PostgreSQL (the product's default).
integration-embedded: $(STAMP)
	LEDGER_TEST_PG=embedded $(BIN)/pytest -q tests/integration -m "not kafka"

bench: $(STAMP)
	$(BIN)/python bench/append.py
	$(BIN)/python bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
