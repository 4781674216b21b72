# smartgroups: `make help` lists the targets. `make run` and `make test` do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KAFKA_PORT ?= 9092
# The broker every target talks to: KAFKA_BOOTSTRAP_SERVERS when set (no local broker is started),
# else the local broker on KAFKA_PORT. Passed explicitly to every command `make run` starts, so a
# KAFKA_PORT=19192 run never reaches a broker on 9092.
BOOTSTRAP := $(if $(KAFKA_BOOTSTRAP_SERVERS),$(KAFKA_BOOTSTRAP_SERVERS),127.0.0.1:$(KAFKA_PORT))

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@if [ -t 1 ]; then on='\033[36m'; off='\033[0m'; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "} \
	  /^[a-zA-Z_-]+:.*?## / {printf "  %s%-12s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml setup.py src/smartgroups/core/_native.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install smartgroups with its dev tools

.PHONY: kafka-up
kafka-up: $(STAMP) ## Start the local Kafka broker on KAFKA_PORT (default 9092) unless one runs
	$(BIN)/python -m smartgroups.devbroker up --port $(KAFKA_PORT)

.PHONY: kafka-down
kafka-down: $(STAMP) ## Stop the local Kafka broker
	$(BIN)/python -m smartgroups.devbroker down

.PHONY: run
run: $(STAMP) ## Install, start a broker on KAFKA_PORT (unless KAFKA_BOOTSTRAP_SERVERS is set), run the demo
ifeq ($(KAFKA_BOOTSTRAP_SERVERS),)
	$(BIN)/python -m smartgroups.devbroker up --port $(KAFKA_PORT)
endif
	$(BIN)/smartgroups worker --demo --bootstrap-servers $(BOOTSTRAP)

.PHONY: lint
lint: $(STAMP) ## Ruff (lint + format check), mypy (strict) and import-linter (the layers)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: fmt
fmt: $(STAMP) ## Format and autofix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

.PHONY: test
test: $(STAMP) lint ## Install, lint, type-check, run the whole suite on a real broker, then the pure-Python run
	$(BIN)/pytest -m "not slow"
	$(MAKE) --no-print-directory test-pure

.PHONY: test-pure
test-pure: $(STAMP) ## Unit and property tests on the Python reference (SMARTGROUPS_NATIVE=0: no C extension)
	SMARTGROUPS_NATIVE=0 $(BIN)/pytest -q tests/unit tests/property tests/contract

.PHONY: test-faults
test-faults: $(STAMP) ## The whole fault suite (tests/faults, long scenarios included; docs/reliability.md)
	$(BIN)/pytest -m faults tests/faults

.PHONY: test-unit
test-unit: $(STAMP) ## Unit, property and contract tests only (no broker)
	$(BIN)/pytest tests/unit tests/property tests/contract

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $@

.PHONY: bench
bench: $(BENCH_STAMP) ## End-to-end benchmark, quick sizes (bench/results/latest.json + throughput.png)
	$(BIN)/python -m bench.e2e --profile quick

.PHONY: bench-full
bench-full: $(BENCH_STAMP) ## End-to-end benchmark, full sizes (1,000,000-member backfill)
	$(BIN)/python -m bench.e2e --profile full

.PHONY: clean
clean: ## Remove local state (broker data, worker data); keeps the jar cache
	rm -rf var
