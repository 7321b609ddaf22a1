# The README's commands. Each builds .venv first (the tap, its test and lint tools and Meltano);
# it is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Everything ruff checks and formats: the whole repo's Python.
LINT_PATHS := tap_heymarket testbed tests benchmarks scripts orchestration

.PHONY: demo test check lint ruff mypy bench reliability

demo: $(STAMP)
	$(VENV)/bin/python -m testbed.demo

# The whole suite, after the lint (what CI runs); `make check` is the tests alone.
test: lint check

check: $(STAMP)
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# What CI checks before the tests; ruff first, as it is the quicker to fail.
lint: ruff mypy

ruff: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

# The packages and strictness are in pyproject.toml's [tool.mypy].
mypy: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.run

reliability: $(STAMP)
	$(VENV)/bin/python scripts/reliability_report.py

$(STAMP): pyproject.toml
	@echo "==> Setting up $(VENV) (the first time takes a minute or two)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --progress-bar off -e ".[dev,dagster]"
	touch $@
