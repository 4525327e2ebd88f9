# Every target installs what it needs into .venv first, so a fresh clone needs only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench bench-quick clean
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/yotposync demo

lint: $(STAMP)
	$(BIN)/ruff check yotposync tests $(wildcard benchmarks)
	$(BIN)/ruff format --check yotposync tests $(wildcard benchmarks)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

# The benchmark tools (matplotlib, py-spy) get a venv of their own. The measured processes run
# from .venv, which holds only what an installation holds: see PYTHON in benchmarks/harness.py.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The benchmarks of docs/performance.md: stores of 1k to 100k tickets, about 30 minutes on 2 cores.
bench: $(BENCH_STAMP)
	BENCH_PYTHON=$(abspath $(BIN)/python) $(BENCH_VENV)/bin/python -m benchmarks.run

# Small sizes and short runs, a few minutes, while developing.
bench-quick: $(BENCH_STAMP)
	BENCH_PYTHON=$(abspath $(BIN)/python) $(BENCH_VENV)/bin/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache
