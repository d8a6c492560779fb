# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean adapter-suite adapter-fast

$(STAMP): pyproject.toml warehouse/dbt_chdb/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The chdb dbt adapter first (its own package in this repository), then the platform on it.
	$(PY) -m pip install --quiet -e ./warehouse/dbt_chdb
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/fupin demo

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q
	$(MAKE) adapter-fast

# dbt's standard adapter tests on chdb (warehouse/dbt_chdb/tests/): the whole suite, and the quick
# subset (basic, incremental, snapshots, seeds, docs, unit tests) that `make test` runs. Two
# processes: each binds its own chdb data path. ARGS=... passes more pytest options.
ADAPTER_PYTEST := cd warehouse/dbt_chdb && ../../$(PY) -m pytest -q -p no:cacheprovider -n 2

adapter-suite: install
	$(ADAPTER_PYTEST) tests $(ARGS)

adapter-fast: install
	$(ADAPTER_PYTEST) -m fast tests $(ARGS)

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .fupin dbt_project/target dbt_project/logs
