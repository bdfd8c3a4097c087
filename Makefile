# Two commands for a fresh machine: `make demo` runs a real sweep, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
COLAB := .venv-colab
TORCH ?= 2.13.0

.PHONY: demo test lint test-colab bench bench-quick clean services reliability

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of PyTorch first (a file on this kind of machine, 0.2 GB): the frameworks'
	# ranges then take it instead of a CUDA build of several GB that tests cannot use.
	$(PY) -m pip install -q torch==$(TORCH)
	$(PY) -m pip install -q -e '.[test,notebooks]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(COLAB)/.stamp: pyproject.toml tests/notebook/requirements-colab.txt
	$(PYTHON) -m venv $(COLAB)
	$(COLAB)/bin/python -m pip install -q --upgrade pip
	$(COLAB)/bin/python -m pip install -q -r tests/notebook/requirements-colab.txt -e .
	touch $@

demo: $(VENV)/.stamp
	$(PY) .ci/run_notebook.py notebooks/quickstart.ipynb

services:
	bash .ci/services.sh

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check nbsweep tests benchmarks .ci
	$(VENV)/bin/ruff format --check nbsweep tests benchmarks .ci
	# Layers and import cycles, imports inside functions included (the table: .ci/layers.py).
	$(PY) .ci/layers.py

test-colab: $(COLAB)/.stamp
	$(COLAB)/bin/python -m pytest tests/notebook -m "not slow" -q -p no:cacheprovider

test: $(VENV)/.stamp services lint test-colab
	$(VENV)/bin/python -m pytest -q -n 2

bench: $(VENV)/.stamp
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.stamp
	$(PY) -m benchmarks.run --quick

# The fault tier alone, then docs/reliability.md from its figures (make test leaves them in build/).
reliability: $(VENV)/.stamp
	NBSWEEP_RELIABILITY_JSON=build/reliability.json $(PY) -m pytest tests/faults -q -p no:cacheprovider -p no:xdist
	$(PY) -m tests.faults.report build/reliability.json docs/reliability.md

clean:
	rm -rf $(VENV) $(COLAB) .nbsweep .bench
