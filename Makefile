# Two commands for a new user: `make run` and `make test`. Each installs what is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= conf/gateway.toml

.PHONY: run test lint typecheck unit install install-test clean accuracy

# The runtime package alone: what `make run` needs.
$(BIN)/ctgw: pyproject.toml
	@$(PY) -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null || \
		{ echo "installing python3-venv (needs Python 3.11+)"; apt-get update -qq && \
		  apt-get install -y -qq python3 python3-venv python3-pip >/dev/null; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(BIN)/ctgw

# The test extras on top (pytest, ruff, mypy, playwright, hypothesis): what `make test` needs.
$(BIN)/pytest: $(BIN)/ctgw pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/pytest

install: $(BIN)/ctgw

install-test: $(BIN)/pytest

# The demo site gets a seeded 90-day history the first time (its store has no calls yet).
run: install
	$(BIN)/ctgw demo seed --config $(CONFIG)
	@echo "ctgw: demo page  http://127.0.0.1:8080/demo/"
	@echo "ctgw: API        http://127.0.0.1:8080/v1/   health http://127.0.0.1:8080/healthz"
	@echo "ctgw: admin key  $(BIN)/ctgw keys create me --config $(CONFIG)"
	$(BIN)/ctgw serve --config $(CONFIG)

lint: install-test
	$(BIN)/ruff check gateway numberpool reports tests bench
	$(BIN)/ruff format --check gateway numberpool reports tests bench

typecheck: install-test
	$(BIN)/mypy gateway numberpool reports

test: install-test lint typecheck
	bash tests/lab/setup.sh
	$(BIN)/pytest

# The accuracy figure of this release (issue 11): the real daemon on seeds 1-6 at 1.2x and 1.4x
# peak live leases, and the in-process sim over 40 seeds, into docs/accuracy.md. By hand, not CI:
# about a quarter of an hour on two CPUs, every CPU busy.
accuracy: install-test
	$(BIN)/python bench/accuracy_release.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
