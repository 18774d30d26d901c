# Two commands do all the set-up on a fresh machine with Python >= 3.11:
#   make demo   — create .venv, install bioSNN, run the main job (STDP compression, small scale) on the
#                 embedded digits (no download)
#   make test   — create .venv, install bioSNN with its test tools, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-cuda clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "bioSNN needs Python >= 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# brian2cuda pins brian2 2.8.0, so CUDA code generation is checked in an environment of its own
CUDA_VENV ?= .venv-cuda
$(CUDA_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CUDA_VENV)/bin/python -m pip install --quiet -e '.[dev,cuda]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/biosnn run compression --preset quick

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not gpu and not cuda_build"
	@if command -v nvcc >/dev/null; then $(MAKE) --no-print-directory test-cuda; \
	 else echo "nvcc not found: CUDA code generation check skipped"; fi

# generate the Diehl&Cook network with brian2cuda and compile it with nvcc (no GPU needed)
test-cuda: $(CUDA_VENV)/.installed
	$(CUDA_VENV)/bin/python -m pytest -m cuda_build tests/brian/test_cuda_build.py

clean:
	rm -rf $(VENV) $(CUDA_VENV) runs .pytest_cache
