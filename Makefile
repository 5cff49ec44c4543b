# Two commands do everything on a fresh machine:
#   make demo   install, build the pipeline on the embedded DuckDB, then the lineage report
#   make test   install, then run the whole test suite (pytest, which also runs real dbt builds)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# dbt finds ./profiles.yml from the project folder; tests set their own profiles dir.

.PHONY: install demo build report check test test-fast clean install-spark build-spark test-spark

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

build: install
	$(BIN)/dbt build

report: install
	$(BIN)/lineage-tools report -o target/lineage

# The provenance contract (rules 3 and 4) on every model, from lineage alone; exit 1 on a finding.
check: install
	$(BIN)/lineage-tools check $(if $(GITHUB_ACTIONS),--format github,)

demo: build check report

test: install check
	$(BIN)/python -m pytest

# The tests that run no dbt build (about a minute); `make test` runs everything (12-15 minutes).
test-fast: install
	$(BIN)/python -m pytest -m "not dbt"

# The `spark` target (docs/spark.md): the spark extra (dbt-spark, pyspark; needs Java 17+), then
# the same build on a local Spark session. `make test` runs the Spark test too once it is installed.
install-spark: $(VENV)/.installed-spark

$(VENV)/.installed-spark: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	@touch $@

build-spark: install-spark
	$(BIN)/python -m lineage_tools.spark_env --start
	$(BIN)/dbt build --target spark

test-spark: install-spark
	$(BIN)/python -m pytest -m spark tests/test_spark.py

clean:
	rm -rf $(VENV) target logs
