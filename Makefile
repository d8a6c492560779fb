# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Every package of the platform and dev extras at the version checked together (make lock writes it).
LOCK   := requirements.lock

.PHONY: install demo test lint bench clean lock readme-check

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[platform,dev]'
	touch $(STAMP)

# Resolve pyproject.toml's platform and dev extras again into requirements.lock (uv from PyPI, in a
# throwaway venv: the platform does not depend on it).
lock:
	$(PYTHON) -m venv /tmp/fupin-uv && /tmp/fupin-uv/bin/pip install --quiet uv
	/tmp/fupin-uv/bin/uv pip compile pyproject.toml --extra platform --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --no-emit-package fupin -o $(LOCK)

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

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .fupin dbt_project/target dbt_project/logs
