# closeprob: `make train` and `make test` set themselves up on a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?=
CONFIG ?= $(if $(DATASET),configs/$(DATASET).yaml,configs/default.yaml)
DEALS ?=
INTERACTIONS ?=
NAME ?=
# Every user value reaches the shell as one single-quoted word: `OUT='x; cmd'` is a file name,
# not a command, and a path with spaces stays one argument.
quote = '$(subst ','\'',$(1))'
DATA_FLAGS = $(if $(DEALS),--deals $(call quote,$(DEALS))) $(if $(INTERACTIONS),--interactions $(call quote,$(INTERACTIONS))) $(if $(NAME),--name $(call quote,$(NAME)))
UI_PORT ?= 5000
WEEKS ?= 8
SIZE ?= small,medium
THROUGHPUT ?= 100000
SPARK ?= 1000000
# pytest-xdist workers for `make test` (auto: one per core; 0: none, in this process)
TEST_WORKERS ?= auto
FT_VENV := .venv-featuretools
AS_OF ?=
MODEL ?=
OUT ?=
FORCE ?=
PREDICT_FLAGS = $(DATA_FLAGS) $(if $(AS_OF),--as-of $(call quote,$(AS_OF))) $(if $(MODEL),--model $(call quote,$(MODEL))) $(if $(OUT),--out $(call quote,$(OUT)))
# MLflow's usage telemetry is off unless you opt in: MLFLOW_DISABLE_TELEMETRY=false make ui
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: help setup check generate train predict monitor compare results backtest bench bench-featuretools test test-fast system-packages lint format ui clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the project (done by the other targets when needed)

check: $(STAMP) ## Check the data against the contract, every problem at once (DEALS=… INTERACTIONS=…)
	$(BIN)/closeprob check --config $(call quote,$(CONFIG)) $(DATA_FLAGS)

generate: $(STAMP) ## Write the built-in synthetic CRM to data/ (seeded; FORCE=1 replaces existing files)
	$(BIN)/closeprob generate --config $(call quote,$(CONFIG)) $(if $(FORCE),--force)

train: $(STAMP) ## Train, evaluate, log to MLflow and register (DEALS=… INTERACTIONS=… NAME=… for your data)
	$(BIN)/closeprob train --config $(call quote,$(CONFIG)) $(DATA_FLAGS)

predict: $(STAMP) ## Score open deals into outputs/priority_queue.csv (AS_OF=… MODEL=… OUT=…)
	$(BIN)/closeprob predict --config $(call quote,$(CONFIG)) $(PREDICT_FLAGS)

monitor: $(STAMP) ## Past queues against the outcomes now known: realised vs expected accuracy, retrain due?
	$(BIN)/closeprob monitor --config $(call quote,$(CONFIG)) $(DATA_FLAGS)

compare: $(STAMP) ## Model vs baselines (RFM, ABC by value, logistic) on one split, logged to MLflow
	$(BIN)/closeprob evaluate --baselines --config $(call quote,$(CONFIG)) $(DATA_FLAGS)

results: $(STAMP) ## The README's results table: every data set, model vs RFM and value-only
	$(BIN)/closeprob results

backtest: $(STAMP) ## Weekly queues of the past scored against what happened (WEEKS=8)
	$(BIN)/closeprob backtest --config $(call quote,$(CONFIG)) --weeks $(call quote,$(WEEKS)) $(DATA_FLAGS)

bench: $(VENV)/.bench-installed bench-featuretools ## Benchmarks -> bench/RESULTS.md (SIZE=small,medium[,large] THROUGHPUT=open deals SPARK=interactions)
	$(BIN)/python bench/run.py --size $(call quote,$(SIZE)) --throughput $(call quote,$(THROUGHPUT)) --spark $(call quote,$(SPARK))

bench-featuretools: ## Featuretools in its own venv (it needs pandas < 3); the bench skips it if this fails
	@$(MAKE) --no-print-directory $(FT_VENV)/.installed || echo "Featuretools not installed: the bench will skip it"

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench,spark]'
	touch $@

$(FT_VENV)/.installed:
	$(PYTHON) -m venv $(FT_VENV)
	$(FT_VENV)/bin/pip install --quiet 'featuretools==1.31.0' 'pandas>=2.2,<3' 'pyarrow>=14'
	touch $@

test: $(STAMP) $(VENV)/.spark-installed system-packages ## Run the whole test suite (with the Spark engine's tests: needs Java 17) on every core (TEST_WORKERS)
	$(BIN)/python -m pytest -n $(call quote,$(TEST_WORKERS)) --dist loadfile --no-loadscope-reorder

system-packages: ## Install PostgreSQL and Chromium with apt-get when absent (the tests use them)
	.ci/system-packages

$(VENV)/.spark-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[spark]'
	touch $@

test-fast: $(STAMP) ## Run the tests not marked slow
	$(BIN)/python -m pytest -m "not slow" -n $(call quote,$(TEST_WORKERS)) --dist loadfile --no-loadscope-reorder

lint: $(STAMP) ## ruff check, ruff format --check, mypy, import rules (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p closeprob
	$(BIN)/lint-imports

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: $(STAMP) ## MLflow UI on 127.0.0.1 (UI_PORT, default 5000) over ./mlflow.db (or MLFLOW_TRACKING_URI)
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port $(call quote,$(UI_PORT))

clean: ## Remove generated data, outputs, caches (keeps mlflow.db and .venv)
	rm -rf data outputs bench/.work .pytest_cache .ruff_cache .mypy_cache .hypothesis
