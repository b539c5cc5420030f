# Two commands for a new user: `make run` and `make test`. Each installs what is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= conf/gateway.toml

.PHONY: run test lint typecheck unit install clean

$(BIN)/ctgw: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/ctgw

install: $(BIN)/ctgw

run: install
	$(BIN)/ctgw serve --config $(CONFIG)

lint: install
	$(BIN)/ruff check gateway numberpool reports tests bench
	$(BIN)/ruff format --check gateway numberpool reports tests bench

typecheck: install
	$(BIN)/mypy gateway numberpool reports

test: install lint typecheck
	bash tests/lab/setup.sh
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
