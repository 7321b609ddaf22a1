# The README's two commands. Both build .venv first (the tap, its test tools and Meltano);
# it is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test bench reliability

demo: $(STAMP)
	$(VENV)/bin/python -m testbed.demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.run

reliability: $(STAMP)
	$(VENV)/bin/python scripts/reliability_report.py

$(STAMP): pyproject.toml
	@echo "==> Setting up $(VENV) (the first time takes a minute or two)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --progress-bar off -e ".[dev]"
	touch $@
