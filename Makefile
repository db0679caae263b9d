# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.py | cksum | cut -d' ' -f1)

.PHONY: run test bench clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(VENV)/bin/twistd -n --pidfile= marconi $(ARGS)

test: $(STAMP)
	$(PY) -m twisted.trial $(or $(TESTS),tests)

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) _trial_temp var
