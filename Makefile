# spoiler-stream: `make up` runs the pipeline natively, `make test` runs every test.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest

.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
.PHONY: pipeline retrain promote rollback autopilot help deps up down status stack-up stack-down logs test \
        test-unit test-integration test-e2e lint typecheck bench cost-table schemas docs dashboards \
        compose-check faults alert-proof

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

deps: ## Install system packages, .venv and Kafka jars (idempotent)
	@scripts/deps.sh

stack-up: deps ## Start Kafka, PostgreSQL and Prometheus natively
	@$(PY) -m devstack up

stack-down: ## Stop the native stack
	@$(PY) -m devstack down

up: stack-up ## Start the stack and the whole pipeline
	@scripts/pipeline.sh up

down: ## Stop the pipeline and the stack (only what `up` started)
	@if [[ -x scripts/pipeline.sh ]]; then scripts/pipeline.sh down; fi
	@if [[ -x $(PY) ]]; then $(PY) -m devstack down; fi

status: ## Show what runs and where
	@$(PY) -m devstack status
	@scripts/pipeline.sh status

logs: ## Tail the logs of every native process
	@tail -n 20 -F .state/*/*.log .state/*/*.out 2>/dev/null

test: stack-up ## Run the whole test suite on the real stack (what CI runs)
	@scripts/test.sh

test-unit: deps ## Unit tests only (no services)
	@$(PYTEST) -m unit -q

lint: deps ## ruff
	@.venv/bin/ruff check .

typecheck: deps ## mypy over the whole project, tests included ([tool.mypy] files)
	@.venv/bin/mypy

bench: stack-up ## Benchmarks, each with its baseline measured in the same run
	@$(PY) -m benchmarks

cost-table: stack-up ## Re-measure the served model's costs and rewrite docs/performance.md's table
	@$(PY) -m benchmarks --only graphs stream_processor scaleout pipeline --out bench-results/cost.json
	@$(PY) -m benchmarks.cost_table bench-results/cost.json --write docs/performance.md

alert-proof: stack-up ## Prove the model alerts (stable replay + drift scenarios), rewrite the docs table
	@$(PY) -m devstack alert-proof --write docs/monitoring.md

faults: stack-up ## Fault-injection suite (kill -9 and restart each service)
	@$(PYTEST) -m faults -q

pipeline: deps ## Run the DVC model pipeline (dvc repro)
	@PATH=$(CURDIR)/.venv/bin:$$PATH .venv/bin/dvc repro

retrain: deps ## Train a challenger on the labelled reviews in PostgreSQL (retrain/dvc.yaml)
	@PATH=$(CURDIR)/.venv/bin:$$PATH $(PY) -m training retrain

promote: deps ## Serve VERSION (default latest; e.g. VERSION=challenger) as champion, atomically
	@$(PY) -m training promote $(or $(VERSION),latest)

rollback: deps ## Serve the previous champion again
	@$(PY) -m training rollback

autopilot: deps ## Promote/roll back on live evidence (acts only with SPOILER_AUTOPILOT_ENABLED=true)
	@$(PY) -m training autopilot

schemas: deps ## Regenerate the JSON Schema files from the contracts
	@$(PY) -m spoiler_tools.contracts_cli export

docs: deps ## Regenerate the README's settings table
	@$(PY) -m tools.settings_doc --write README.md

dashboards: deps ## Regenerate grafana/dashboards/*.json from monitoring/dashboards.py
	@$(PY) -m monitoring build-dashboards --dir grafana/dashboards

compose-check: ## Validate compose.yaml without a Docker daemon
	@docker-compose --env-file .env.example -f compose.yaml config -q && echo "compose.yaml is valid"
