# Two commands do all the set-up on a fresh machine with Python >= 3.11:
#   make demo   — create .venv, install bioSNN, run the main job (STDP compression, small scale) on the
#                 embedded digits (no download)
#   make test   — create .venv, install bioSNN with its test tools, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint test-cuda clean

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

# brian2cuda pins brian2 2.8.0, so CUDA code generation is checked in an environment of its own. It needs only
# what generating the Diehl&Cook network imports (no torch, librosa or matplotlib: minutes less to install);
# keep this list in step with pyproject.toml's dependencies and its cuda extra
CUDA_VENV ?= .venv-cuda
CUDA_CHECK_DEPS := "brian2cuda==1.0a7" nvidia-curand "numpy>=1.26,<2.4" "scipy>=1.11" "scikit-learn>=1.3" \
	"tqdm>=4.66" "pytest>=8"
$(CUDA_VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(CUDA_VENV)
	$(CUDA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CUDA_VENV)/bin/python -m pip install --quiet $(CUDA_CHECK_DEPS)
	$(CUDA_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/biosnn run compression --preset quick

# Where nvcc exists, the CUDA check (its own environment, then code generation + nvcc compilation) runs beside
# the main environment's set-up and test suite: nvcc and pip wait on different things, and together they fit
# the 2 cores better than one after the other. Its log is printed when both are done; either failing fails `test`.
CUDA_LOG ?= .test-cuda.log
test:
	@cuda=0; \
	if command -v nvcc >/dev/null; then \
	  cuda=1; echo "CUDA code generation check started beside the tests (log: $(CUDA_LOG))"; \
	  $(MAKE) --no-print-directory test-cuda > $(CUDA_LOG) 2>&1 & pid=$$!; \
	else echo "nvcc not found: CUDA code generation check skipped"; fi; \
	$(MAKE) --no-print-directory $(VENV)/.installed-test && $(MAKE) --no-print-directory lint \
	  && $(BIN)/python -m pytest -m "not slow and not gpu and not cuda_build" -n auto --dist loadfile --durations=12; rc=$$?; \
	crc=0; if [ $$cuda = 1 ]; then wait $$pid; crc=$$?; echo "---- CUDA check ($(CUDA_LOG))"; \
	  tail -n 25 $(CUDA_LOG); fi; \
	if [ $$rc != 0 ] || [ $$crc != 0 ]; then echo "test failed: tests rc=$$rc, CUDA check rc=$$crc"; exit 1; fi

# ruff: the lint rules and formatting of pyproject.toml (the pre-commit hooks run the same)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# generate the Diehl&Cook network with brian2cuda and compile it with nvcc (no GPU needed)
test-cuda: $(CUDA_VENV)/.installed
	$(CUDA_VENV)/bin/python -m pytest -m cuda_build tests/brian/test_cuda_build.py

clean:
	rm -rf $(VENV) $(CUDA_VENV) runs .pytest_cache $(CUDA_LOG)
