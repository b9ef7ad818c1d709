# Commands for developers and CI. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
REQS := requirements-dev.txt layers/stack_core/requirements.txt layers/stack_core/requirements-nodeps.txt
ARGS ?=
export PYTHONDONTWRITEBYTECODE := 1
export SAM_CLI_TELEMETRY := 0

SAM_VENV ?= .venv-sam
SAM_VERSION := 1.170.0
# checkov and pip-audit pull in dependencies that conflict with the project's pins (and are
# not needed to run anything): their own venv, like SAM CLI's.
SEC_VENV ?= .venv-security
SEC_REQS := tools/requirements-security.txt

.PHONY: bench docs build validate preflight help venv lint security audit format typecheck test suites test-fast unit integration template local soak emulator clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): $(REQS)
	@interp=$$(tools/pick-python); echo "make: building $(VENV) with $$interp ($$($$interp -V 2>&1))"; \
	rm -rf $(VENV) && $$interp -m venv $(VENV) && \
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip && \
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | { grep -v "is ignored: it is neither" || true; } && \
	$(PY) -m pip check && touch $(STAMP)

venv: $(STAMP) ## Create the virtualenv from the pinned requirements
	@echo "make: using $$($(PY) -V) at $(VENV)"

lint: $(STAMP) security ## ruff (check + format --check), mypy --strict, import-linter, security
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=layers/stack_core:. $(BIN)/lint-imports

$(SEC_VENV)/.installed: $(SEC_REQS)
	@interp=$$(tools/pick-python); rm -rf $(SEC_VENV) && $$interp -m venv $(SEC_VENV) && \
	$(SEC_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(SEC_REQS) 2>&1 | { grep -v "is ignored: it is neither" || true; } && \
	touch $@

security: $(STAMP) $(SEC_VENV)/.installed ## bandit (product strict, dev tools with named skips), checkov on the translated template
	$(SEC_VENV)/bin/bandit -q -r layers/stack_core/fargate_stack functions
	# Dev-only code: subprocesses of our own interpreter (B404/B603), seeded fault dice (B311),
	# moto's fake credentials (B105) and asserts (B101) are what it is for.
	$(SEC_VENV)/bin/bandit -q -r local bench tools --skip B101,B105,B311,B404,B603
	$(PY) tools/checkov_template.py --checkov $(SEC_VENV)/bin/checkov

audit: $(SEC_VENV)/.installed ## pip-audit of every pinned requirement (needs a vulnerability service)
	$(SEC_VENV)/bin/pip-audit --no-deps --disable-pip --progress-spinner off --strict \
		-r requirements-dev.txt -r layers/stack_core/requirements.txt -r layers/stack_core/requirements-nodeps.txt

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint suites ## Lint, then every test suite, slow ones included (what CI runs)

suites: $(STAMP) ## Every test suite, slow ones included, without lint
	$(BIN)/pytest $(ARGS)

test-fast: $(STAMP) ## The suites without the slow tier (e2e, soak), without lint: the edit loop
	$(BIN)/pytest -m "not slow" $(ARGS)

unit: $(STAMP) ## Unit tests only
	$(BIN)/pytest tests/unit $(ARGS)

integration: $(STAMP) ## Integration tests only
	$(BIN)/pytest tests/integration $(ARGS)

template: $(STAMP) ## Template tests (sam-translator + cfn-lint)
	$(BIN)/pytest tests/template $(ARGS)

local: $(STAMP) ## Run the local world (emulator + demo workload); ARGS="--help" for options
	$(PY) -m local $(ARGS)

soak: $(STAMP) ## Chaos soak: 5,000 jobs under seeded faults, zero lost required; ARGS="--seed N"
	$(PY) -m local.soak $(ARGS)

emulator: $(STAMP) ## Start the Stacks API emulator in the foreground; ARGS="--port 8080 --token T"
	$(PY) -m local.emulator $(ARGS)

$(SAM_VENV)/.installed:
	@interp=$$(tools/pick-python); rm -rf $(SAM_VENV) && $$interp -m venv $(SAM_VENV) && \
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_VERSION) 2>&1 | { grep -v "is ignored: it is neither" || true; } && \
	touch $@

build: $(SAM_VENV)/.installed ## sam build with a python3.12 interpreter (SAM CLI in its own venv)
	@py=$$(tools/pick-python); case "$$($$py -V)" in *" 3.12."*) ;; *) echo "make build: sam build needs python3.12 for the python3.12 runtime; none found" >&2; exit 1;; esac; \
	PATH="$$(dirname $$py):$$PATH" $(SAM_VENV)/bin/sam build

validate: $(SAM_VENV)/.installed ## sam validate --lint (cfn-lint on the SAM template)
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint

bench: $(STAMP) ## Benchmarks (cold start, API calls, dispatch latency, burst, cost); ARGS="--help"
	$(PY) -m bench $(ARGS)

preflight: $(STAMP) ## Check an AWS account before the first deploy (your credentials); ARGS="--help"
	$(PY) tools/preflight.py $(ARGS)

docs: $(STAMP) ## Regenerate docs/configuration.md from template.yaml
	$(PY) tools/config_docs.py

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache .hypothesis
