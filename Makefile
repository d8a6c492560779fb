# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Apache ECharts for the dashboard, from the npm registry at set-up (never a CDN; not committed).
ECHARTS_VERSION := 6.1.0
ECHARTS := warehouse/dashboard/static/vendor/echarts.min.js

.PHONY: install demo test lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ECHARTS):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch Apache ECharts for the dashboard" >&2; exit 1; }
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent echarts@$(ECHARTS_VERSION) >/dev/null && tar -xzf echarts-$(ECHARTS_VERSION).tgz package/dist/echarts.min.js package/LICENSE) \
	  && mkdir -p $(@D) && cp $$tmp/package/dist/echarts.min.js $@ && cp $$tmp/package/LICENSE $(@D)/ECHARTS-LICENSE && rm -rf $$tmp

install: $(STAMP) $(ECHARTS)

# The browser tests need Debian's chromium and chromium-driver: installed when absent and we may (root).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei; \
	  else echo "chromium/chromium-driver absent and not root: the browser tests will skip"; fi; fi

demo: install
	$(VENV)/bin/fupin demo --keep

lint: install
	$(VENV)/bin/ruff check .

test: install lint browser
	$(PY) -m pytest -q

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .fupin dbt_project/target dbt_project/logs
