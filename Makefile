# Two entry points: `make bench` (set up, run the default suite, regenerate the leaderboard)
# and `make test` (set up, run the tests). The set-up is idempotent: a stamp file records it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0

.PHONY: setup bench test leaderboard clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build first, so nothing below pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

bench: setup
	$(BIN)/bench run
	$(BIN)/bench leaderboard

leaderboard: setup
	$(BIN)/bench leaderboard

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
