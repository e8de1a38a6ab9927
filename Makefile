# claw-operator — every target works on a fresh clone with nothing installed by hand.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# `make test` runs pytest on parallel workers (pytest-xdist): most integration tests wait on the
# simulators' timers, not the CPU. `make test PYTEST_WORKERS=` runs it in one process.
PYTEST_WORKERS ?= 4
PYTEST_PARALLEL = $(if $(PYTEST_WORKERS),-n $(PYTEST_WORKERS) --dist worksteal)

.PHONY: help install tools lint test smoke unit crds crds-check demo sandbox bench chaos monitoring clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

install: $(STAMP) tools ## create .venv and install the package (editable) with dev tools and the sandbox

tools: ## install the system tools the tests use (kubectl) when missing
	@command -v kubectl >/dev/null 2>&1 || { \
	  echo "kubectl not found: installing Debian's kubernetes-client"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq kubernetes-client >/dev/null; }

lint: install ## ruff (checks and formatting), mypy (strict on api/fly/lifecycle), import-linter layer contracts
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/ruff format --check operator tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m claw_operator.api.crd --output crds/clawinstances.yaml --check

test: install ## lint, then the whole pytest suite (4 workers), then the operator's CPU figure (smoke)
	$(MAKE) lint
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)
	$(MAKE) smoke

smoke: install ## operator CPU per instance to Ready and per periodic check, small fleet (~40 s; printed, not asserted)
	$(BIN)/python benchmarks/fleet.py --smoke

unit: install ## only the pure unit tests (fast)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

crds: install ## regenerate crds/clawinstances.yaml from the models
	$(BIN)/python -m claw_operator.api.crd --output crds/clawinstances.yaml

monitoring: install ## regenerate the Grafana dashboard JSON and the krew archive's sha256
	$(BIN)/python docs/monitoring/dashboard.py
	$(BIN)/python docs/krew/archive.py

demo: install ## a guided tour of the lifecycle (kubesim + flysim + operator, < 1 min)
	$(BIN)/claw-operator demo --tour

sandbox: install ## the interactive sandbox (Ctrl-C to stop)
	$(BIN)/claw-operator demo

# processes.py is the benchmarks' shared helper; chaos.py has its own target.
BENCH_SKIP := benchmarks/processes.py benchmarks/chaos.py benchmarks/plots.py benchmarks/profiling.py benchmarks/textbook_operator.py
CHAOS_ARGS ?=

bench: install ## run the benchmarks and print their figures
	@shopt -s nullglob; files=(benchmarks/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks yet"; fi; \
	for f in "$${files[@]}"; do \
	  case " $(BENCH_SKIP) " in *" $$f "*) continue;; esac; \
	  echo "== $$f"; $(BIN)/python "$$f" || exit 1; done

chaos: install ## faults, edits and kill -9 over 3 seeds x 100 instances; fails on any violation (~10 min)
	$(BIN)/python benchmarks/chaos.py $(CHAOS_ARGS)

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
