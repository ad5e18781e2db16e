# The README's commands. Each creates .venv and installs the pinned requirements first.
#   make tutorial   run every step README's commands, then every notebook (output in build/)
#   make test       run the tests against MySQL
#   make lint-corpus  step 6's lint against tests/lint_corpus: recall, precision, crashes
#   make bench      time make tutorial and make test against their targets, then the
#                   tutorial's revisions on tables of 1,000,000 rows (step 6), then step
#                   7's COPY-only ALTER of 1,000,000 users while the app writes: plain, then
#                   through pt-online-schema-change

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: tutorial test bench lab server sync clean lint-corpus

tutorial: $(VENV)/.installed
	$(BIN)/python -m tutorial_kit.tutorial

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint-corpus: $(VENV)/.installed
	$(BIN)/python scripts/lint_corpus.py

bench: $(VENV)/.installed
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench.py --big-tables
	$(BIN)/python scripts/bench.py --online

# JupyterLab is not needed to run the tutorial: installed on first use (requirements-lab.txt).
# Saving a notebook strips its outputs (tutorial_kit/lab.py), so git status stays clean.
# Jupyter refuses to run as root unless told; root is who runs it in a container or CI.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(VENV)/.lab-installed
	$(BIN)/jupyter lab $(ALLOW_ROOT) --ContentsManager.pre_save_hook=tutorial_kit.lab.pre_save $(LAB_ARGS) notebooks/

$(VENV)/.lab-installed: requirements-lab.txt $(VENV)/.installed
	@echo "==> Installing JupyterLab (requirements-lab.txt)"
	@$(BIN)/python scripts/install.py -r requirements-lab.txt
	@touch $@

# Follow along by hand without Docker: a local MySQL with `app` and `dev`, until Ctrl-C.
server: $(VENV)/.installed
	$(BIN)/python -m tutorial_kit serve

# After editing a notebook's .py source: rewrite its paired .ipynb.
sync: $(VENV)/.installed
	$(BIN)/jupytext --sync notebooks/[0-9]*.py

# scripts/install.py shows pip's progress, not its log (the whole log only if pip fails).
# A .venv made by hand (the README's own commands) with every pin installed is kept as it is.
$(VENV)/.installed: requirements.txt pyproject.toml
	@if [ -x $(BIN)/python ] && $(BIN)/python scripts/install.py --check requirements.txt; then \
		touch $@; exit 0; fi; \
	echo "==> Creating $(VENV) and installing the pinned requirements (about 100 packages, the first time only)"; \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/python -m pip install --quiet --upgrade pip && \
	$(BIN)/python scripts/install.py -r requirements.txt -e . && \
	touch $@

clean:
	rm -rf build .pytest_cache
