# Two commands do all the set-up on a fresh machine with Python >= 3.11:
#   make demo   — create .venv, install bioSNN, run the main job (STDP compression, small scale) on the
#                 embedded digits (no download)
#   make test   — create .venv, install bioSNN with its test tools, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "bioSNN needs Python >= 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/biosnn run compression --preset quick

test: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow and not gpu"

clean:
	rm -rf $(VENV) runs .pytest_cache
