# callfloor: every target sets up what it needs; a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test check bench stack native clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## demo: simulated floor -> processors -> HTTP on localhost:8080 (Ctrl-C stops it)
demo: $(VENV)/.installed-run
	$(BIN)/callfloor demo

## test: install what the tests need (Python packages, Debian services), then run them
test: $(STAMP)
	./scripts/ensure-system-deps
	$(BIN)/python -m pytest

## check: ruff and mypy --strict
check: $(STAMP)
	$(BIN)/ruff check callfloor tests bench
	$(BIN)/ruff format --check callfloor tests bench
	$(BIN)/mypy

## bench: measured benchmarks; results go to docs/benchmarks.md by hand
bench: $(STAMP)
	$(BIN)/python -m bench.run_all

## stack: Redis, Mosquitto, callfloor and Prometheus as local processes, from the files docker-compose.yml uses
stack: $(VENV)/.installed-run
	./scripts/ensure-system-deps
	$(BIN)/python -m callfloor.devstack

## native: compile the pure core with mypyc in place (optional, ~1.5x faster replay)
native: $(STAMP)
	$(BIN)/python scripts/build_native.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .stack build *.egg-info
	rm -f callfloor/processors/*.so
