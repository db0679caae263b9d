# The two set-up commands of the README, `make run` and `make test` (lint, type
# check, then the trial suite), and the packaging check CI runs, `make wheel-check`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.py pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck wheel-check bench clean

# An editable install: setup.py's package_dir makes it a plain .pth file
# naming the work tree, so `make run` runs the work tree's code and twistd
# finds its twisted/plugins dropin.
$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(VENV)/bin/twistd -n --pidfile= marconi $(ARGS)

test: lint typecheck
	$(PY) -m twisted.trial $(or $(TESTS),tests)

# ruff and mypy (with the zope plugin) as pyproject.toml configures them.
lint: $(STAMP)
	$(VENV)/bin/ruff check

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The wheel, installed alone into a fresh venv, serves /v1/health.
wheel-check:
	$(PYTHON) .ci/wheel-smoke

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) _trial_temp var build dist .mypy_cache .ruff_cache
