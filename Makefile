# Trender developer commands. `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint format lock clean bench bench-warehouse mwaa-bundle

help:
	@echo "make demo    run trender_daily once on the bundled GitHub snapshot and print the ranking"
	@echo "make test    run the whole test suite"
	@echo "make lint    ruff check and ruff format --check"
	@echo "make bench   a full run against its network lower bound (LATENCY=0.1 JITTER=0)"
	@echo "make bench-warehouse  time the warehouse loads at 1k, 10k and 100k repositories"
	@echo "make format  apply ruff format and safe fixes"
	@echo "make lock    regenerate requirements-lock.txt from requirements-dev.in"
	@echo "make clean   stop the embedded PostgreSQL and remove .local/"
	@echo "make mwaa-bundle  build dist/mwaa/: dags/ with the SQL, plugins.zip, requirements.txt"

venv: $(STAMP)

$(STAMP): requirements-lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-lock.txt
	@touch $@

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python scripts/localenv.py run -- $(BIN)/python -m pytest $(PYTEST_ARGS)

LATENCY ?= 0.1
JITTER ?= 0
bench: $(STAMP)
	$(BIN)/python scripts/bench.py --latency $(LATENCY) --jitter $(JITTER)

bench-warehouse: $(STAMP)
	$(BIN)/python scripts/bench_warehouse.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(STAMP)
	$(BIN)/uv pip compile requirements-dev.in --python-version 3.11 --no-header \
		--annotation-style line -o requirements-lock.txt

clean:
	-@test -x $(BIN)/python && $(BIN)/python scripts/localenv.py stop
	rm -rf .local

# Standard library only: no virtualenv needed to package for Amazon MWAA.
mwaa-bundle:
	$(PYTHON) scripts/mwaa_bundle.py --out dist/mwaa
