# `make run` and `make test` set up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup run test test-slow docs bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(BIN)/mlpipe run --dataset digits --models cnn

test: docs
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not slow" --durations=30

# The documentation site, from docs/ into site/ (git-ignored); --strict: a broken link or a missing
# page fails. `.venv/bin/mkdocs serve` shows it at http://127.0.0.1:8000 while you edit.
docs: setup
	$(BIN)/mkdocs build --strict --quiet

test-slow: setup
	$(BIN)/pytest -m "slow"

# Each bench/*.py script writes bench/results/<name>.json; report.py gathers them in bench/results.md.
# variants.py and selection_rules.py are run by hand: the validation evidence for a default and for
# the selection rule (see their docstrings).
BENCHES := $(filter-out bench/common.py bench/report.py bench/variants.py bench/selection_rules.py bench/tuning.py bench/transfer.py bench/small_data.py,$(wildcard bench/*.py))
bench: setup
	cd bench && for script in $(notdir $(BENCHES)); do ../$(BIN)/python $$script || exit 1; done
	cd bench && ../$(BIN)/python report.py

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Caches and outputs only: the model registry (mlflow/) and the data stay.
clean:
	rm -rf outputs site .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
