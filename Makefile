# The README's commands. Each creates .venv and installs the pinned requirements first.
#   make tutorial   run every step README's commands, then every notebook (output in build/)
#   make test       run the tests against MySQL
#   make bench      time the notebooks and the test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: tutorial test bench lab sync clean

tutorial: $(VENV)/.installed
	$(BIN)/python -m tutorial_kit.tutorial

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python scripts/bench.py

# Jupyter itself is not needed to run the tutorial; install it on demand.
lab: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet jupyterlab
	$(BIN)/jupyter lab notebooks/

# After editing a notebook's .py source: rewrite its paired .ipynb.
sync: $(VENV)/.installed
	$(BIN)/jupytext --sync notebooks/[0-9]*.py

$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "==> Creating $(VENV) and installing the pinned requirements"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -r requirements.txt -e .
	@touch $@

clean:
	rm -rf build .pytest_cache
