# The template's own commands: `make test` for a contributor, `make test-all` what CI runs; `make help` lists all.
.DEFAULT_GOAL := help
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Parallel workers for pytest-xdist; one per core by default.
JOBS ?= auto

.PHONY: help new test test-all bench clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Works where pip refuses system-wide installs (PEP 668): everything goes into .venv.
$(BIN)/.test-deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --group test
	touch $@

new: $(BIN)/.test-deps ## Generate a project from this checkout (asks the questions)
	$(BIN)/cookiecutter .

test: $(BIN)/.test-deps ## Bakes, hooks, answers, each server x packaging's make install lint test, a live start per server (~5 min)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m "not load and not edge and not docker and not scan and not slow"

test-all: $(BIN)/.test-deps ## Every tier: adds load, faults, hostile traffic through the edge, Docker and scanners (what CI runs)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup

bench: $(BIN)/.test-deps ## Benchmark the generated service against bare FastAPI (~15 min; docs/performance.md)
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache
