# Two entry points (see README): `make demo` and `make test`.
# Both build .venv from scratch on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint type bandit bench system-deps services clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.demo: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[examples,requests]'
	touch $@

system-deps:
	sh scripts/install-system-deps.sh

services:
	sh scripts/start-services.sh

demo: $(VENV)/.demo
	$(PY) examples/demo.py

test: system-deps services $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m bandit -c pyproject.toml -q -r datafold_auth keytools
# shellcheck (keytools/openssl/*, scripts/*.sh) runs inside pytest above: tests/test_shell_scripts.py, which
# fails in CI when shellcheck is missing; a second step here would only repeat it with a second set of flags.

lint: $(VENV)/.installed
	$(PY) -m ruff check .

type: $(VENV)/.installed
	$(PY) -m mypy

bandit: $(VENV)/.installed
	$(PY) -m bandit -c pyproject.toml -q -r datafold_auth keytools

bench: $(VENV)/.installed
	$(PY) bench/verify.py

clean:
	rm -rf $(VENV) .tox build *.egg-info
