# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Every package of the platform and dev extras at the version checked together (make lock writes it).
LOCK   := requirements.lock
# Apache ECharts for the dashboard, from the npm registry at set-up (never a CDN; not committed).
ECHARTS_VERSION := 6.1.0
ECHARTS := warehouse/dashboard/static/vendor/echarts.min.js

.PHONY: install demo test lint bench clean lock readme-check adapter-suite adapter-fast browser

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

$(ECHARTS):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch Apache ECharts for the dashboard" >&2; exit 1; }
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent echarts@$(ECHARTS_VERSION) >/dev/null && tar -xzf echarts-$(ECHARTS_VERSION).tgz package/dist/echarts.min.js package/LICENSE) \
	  && mkdir -p $(@D) && cp $$tmp/package/dist/echarts.min.js $@ && cp $$tmp/package/LICENSE $(@D)/ECHARTS-LICENSE && rm -rf $$tmp

install: $(STAMP) $(ECHARTS)

# The browser tests need Debian's chromium and chromium-driver: installed when absent and we may (root).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    { apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei; } \
	      || echo "chromium could not be installed: the browser tests will skip"; \
	  else echo "chromium/chromium-driver absent and not root: the browser tests will skip"; fi; fi

demo: install
	$(VENV)/bin/fupin demo --keep

lint: install
	$(VENV)/bin/ruff check .

test: install lint browser
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
