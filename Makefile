# callfloor: every target sets up what it needs; a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# make demo PORT=18080, make stack PORT=18080 PROFILE=demo: callfloor's port (default
# 8080) and, for the stack, a docker-compose profile (demo: the simulator feeds it).
PORT   ?= 8080
PROFILE ?=

.PHONY: demo test check bench stack stack-down dashboards native clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## demo: simulated floor -> processors -> HTTP on localhost:$(PORT) (Ctrl-C stops it)
demo: $(VENV)/.installed-run
	$(BIN)/callfloor demo --port $(PORT)

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

## stack: docker-compose.yml's services as local processes, from the same files (Ctrl-C or make stack-down stops it)
stack: $(VENV)/.installed-run
	./scripts/ensure-system-deps
	$(BIN)/python -m callfloor.devstack --callfloor-port $(PORT) $(if $(PROFILE),--profile $(PROFILE))

## stack-down: stop the stack `make stack` runs (from another terminal)
stack-down:
	$(BIN)/python -m callfloor.devstack --down

## dashboards: regenerate the Grafana boards in deploy/grafana/dashboards
dashboards: $(STAMP)
	$(BIN)/callfloor dashboards --out deploy/grafana/dashboards --config deploy/callfloor.toml

## native: compile the pure core with mypyc in place (optional, ~1.5x faster replay)
native: $(STAMP)
	$(BIN)/python scripts/build_native.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .stack build *.egg-info
	rm -f callfloor/processors/*.so
