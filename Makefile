# Two commands do everything on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen

# The fixed demo: DEMO_CUSTOMERS customers, landing history up to a week after DEMO_DATE.
DEMO_DATE ?= 2026-06-30
DEMO_CUSTOMERS ?= 5000
DEMO_SEED ?= 42
# The blocked-night demo (make run-blocked) breaks the night after DEMO_DATE.
BLOCKED_DATE ?= 2026-07-01
N ?= 100000
BENCH_ARGS ?=

export SEGMENTS_DATA_DIR ?= $(CURDIR)/data
export AIRFLOW_HOME ?= $(SEGMENTS_DATA_DIR)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export AIRFLOW__LOGGING__LOGGING_LEVEL ?= INFO

UI_PORT ?= 8080

.PHONY: help install run run-blocked demo-data airflow-db ui docs test test-deps lint format bench bench-dbt bench-dbt-tasks identity-report versions rollback forget clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

install: ## Install uv (from PyPI), the locked dependencies into .venv, the Data Docs assets (npm)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(RUN) python -m expectations.offline_assets

demo-data: install ## Generate the demo landing files (only if absent; not with your own SEGMENTS_SOURCES_CONFIG)
	@if [ -n "$$SEGMENTS_SOURCES_CONFIG" ]; then \
	  echo "Sources config $$SEGMENTS_SOURCES_CONFIG: your own files, no demo data generated"; \
	elif [ -d "$(SEGMENTS_DATA_DIR)/landing/orders" ]; then \
	  echo "Demo data present in $(SEGMENTS_DATA_DIR)/landing (make clean to regenerate)"; \
	else \
	  $(RUN) python -m tools.demo_data --customers $(DEMO_CUSTOMERS) --seed $(DEMO_SEED); \
	fi

airflow-db: install ## Create/upgrade the local Airflow metadata DB (SQLite) and the warehouse pool
	@mkdir -p "$(AIRFLOW_HOME)"
	@$(RUN) airflow db migrate >"$(AIRFLOW_HOME)/db-migrate.log" 2>&1 || \
	  { cat "$(AIRFLOW_HOME)/db-migrate.log"; exit 1; }
	@$(RUN) airflow pools set duckdb_warehouse 1 "Single writer of the DuckDB warehouse" >/dev/null

# The deadline alert is off for `airflow dags test`, which cannot run it (dag_support/task_defaults.py).
# The demo date goes in as the as_of_date param, not as the logical date: Airflow's `dags test`
# starts a run at its logical date, and the UI would show it lasting from then until now.
run: demo-data airflow-db ## Run the whole nightly DAG for DEMO_DATE and print a summary
	@echo "Running DAG customer_segmentation for as-of date $(DEMO_DATE) (log: $(SEGMENTS_DATA_DIR)/reports/dags-test-$(DEMO_DATE).log)"
	@mkdir -p "$(SEGMENTS_DATA_DIR)/reports"
	@set -o pipefail; \
	SEGMENTS_LATE_AFTER_HOURS=0 $(RUN) airflow dags test customer_segmentation \
	  --conf '{"as_of_date": "$(DEMO_DATE)"}' 2>&1 \
	  | tee "$(SEGMENTS_DATA_DIR)/reports/dags-test-$(DEMO_DATE).log" \
	  | { grep --line-buffered -E "DAG TEST\] (starting|end task)|Marking run|ERROR|QualityGateError|DbtBuildError|IngestionError" || true; }; \
	dag_status=$$?; \
	$(RUN) python -m tools.summary --as-of $(DEMO_DATE); summary_status=$$?; \
	if [ $$dag_status -ne 0 ]; then echo "The DAG run failed: see $(SEGMENTS_DATA_DIR)/reports/dags-test-$(DEMO_DATE).log"; fi; \
	exit $$(( dag_status || summary_status ))

run-blocked: run ## Demo of a blocked night: a broken delivery for BLOCKED_DATE is stopped, segments stay
	@echo; echo "== Blocked-night demo: a broken orders delivery lands for $(BLOCKED_DATE) =="
	@$(RUN) python -m tools.broken_day --date $(BLOCKED_DATE)
	@if $(MAKE) --no-print-directory run DEMO_DATE=$(BLOCKED_DATE); then \
	  echo "Expected the night of $(BLOCKED_DATE) to be blocked, but it published."; exit 1; \
	fi
	@echo; echo "The night of $(BLOCKED_DATE) was blocked; the segments published for $(DEMO_DATE) stay current:"
	@$(RUN) python -m tools.segment_versions list
	@echo "Undo the demo: $(RUN) python -m tools.broken_day --remove --date $(BLOCKED_DATE)"

ui: demo-data ## Start Airflow (API server/UI, scheduler, DAG processor, triggerer) on localhost:UI_PORT
	@$(RUN) python -m tools.local_airflow --port $(UI_PORT)

test-deps: ## Install PostgreSQL and Chromium from Debian for the end-to-end tests (if missing)
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "Installing$$missing (Debian) for the end-to-end tests ..."; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; } \
	    || echo "Could not install$$missing: the tests that need them will be skipped."; \
	fi

test: install test-deps ## Lint and run the whole test suite
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) sqlfluff lint dbt_project/models dbt_project/tests dbt_project/macros
	@$(RUN) pytest

lint: install ## ruff check + format check + sqlfluff lint of the dbt models, tests and macros
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) sqlfluff lint dbt_project/models dbt_project/tests dbt_project/macros

format: install ## Apply ruff fixes and formatting
	@$(RUN) ruff check --fix .
	@$(RUN) ruff format .
	@$(RUN) sqlfluff fix dbt_project/models dbt_project/tests dbt_project/macros

bench: install ## Time each stage and peak memory for N customers (make bench N=1000000 BENCH_ARGS=--no-baseline)
	@$(RUN) python -m tools.bench --customers $(N) $(BENCH_ARGS)

bench-dbt: install ## dbt seed + run vs the same SQL as a plain DuckDB script (make bench-dbt N=1000000)
	@$(RUN) python -m tools.bench_dbt --customers $(N)

bench-dbt-tasks: install ## Time one dbt build task against one task per dbt node (cosmos-style)
	@$(RUN) python -m tools.bench_dbt_tasks --customers $(DEMO_CUSTOMERS)

identity-report: install ## Precision/recall of identity resolution vs the demo's planted duplicates (after make run)
	@$(RUN) python -m tools.identity_report

docs: install ## dbt's docs as one offline page in data/dbt/docs/static_index.html (after make run)
	@$(RUN) python -m tools.dbt_docs --as-of $(DEMO_DATE)

versions: install ## List the newest segment versions (status, mode, scores, which is current)
	@$(RUN) python -m tools.segment_versions list

rollback: install ## Make an earlier segment version current: make rollback VERSION=N REASON="..."
	@if [ -z "$(VERSION)" ] || [ -z "$(REASON)" ]; then \
	  echo 'Usage: make rollback VERSION=<version id> REASON="<why>" (make versions lists them)'; exit 2; fi
	@$(RUN) python -m tools.segment_versions rollback --version-id "$(VERSION)" --reason "$(REASON)"

forget: install ## Erase one person (GDPR/CCPA): make forget CUSTOMER=<id> REASON="<ticket>"
	@if [ -z "$(CUSTOMER)" ] || [ -z "$(REASON)" ]; then \
	  echo 'Usage: make forget CUSTOMER=<customer id> REASON="<why, e.g. a ticket number>"'; exit 2; fi
	@$(RUN) python -m tools.forget --customer-id "$(CUSTOMER)" --reason "$(REASON)"

clean: ## Remove everything generated under data/
	rm -rf "$(SEGMENTS_DATA_DIR)"
