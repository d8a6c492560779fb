# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Every package of the platform and dev extras at the version checked together (make lock writes it).
LOCK   := requirements.lock

.PHONY: install demo test lint bench clean lock readme-check adapter-suite adapter-fast

$(STAMP): pyproject.toml warehouse/dbt_chdb/pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The chdb dbt adapter first (its own package in this repository), then the platform on it.
	$(PY) -m pip install --quiet -c $(LOCK) -e ./warehouse/dbt_chdb
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[platform,dev]'
	touch $(STAMP)

# Resolve pyproject.toml's platform and dev extras again into requirements.lock (uv from PyPI, in a
# throwaway venv: the platform does not depend on it). dbt-chdb is this repository's: a wheel of it
# is built for the resolver, and it is left out of the lock (make installs it from its folder).
lock:
	$(PYTHON) -m venv /tmp/fupin-uv && /tmp/fupin-uv/bin/pip install --quiet uv
	rm -rf /tmp/fupin-uv/wheels && /tmp/fupin-uv/bin/pip wheel --quiet --no-deps -w /tmp/fupin-uv/wheels ./warehouse/dbt_chdb
	/tmp/fupin-uv/bin/uv pip compile pyproject.toml --extra platform --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --find-links /tmp/fupin-uv/wheels \
		--no-emit-package fupin --no-emit-package dbt-chdb -o $(LOCK)

# Runs the README's step-by-step block on a small county in a fresh data directory.
readme-check: install
	$(PY) -m tests.e2e.readme_steps

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
