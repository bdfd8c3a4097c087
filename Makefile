# Two commands for a fresh machine: `make demo` runs a real sweep, `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
COLAB := .venv-colab
WANDB := .venv-wandb
TORCH ?= 2.13.0

.PHONY: demo test lint test-colab test-main bench bench-quick clean services reliability

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

# W&B's real package, for tests/wandb: the same script must record with it installed too. Its
# own venv (0.13 GB, some 20 s), so that .venv stays without it; .venv's packages (nbsweep
# included) come after its own through a .pth file.
$(WANDB)/.stamp: | $(VENV)/.stamp
	$(PYTHON) -m venv $(WANDB)
	$(WANDB)/bin/python -m pip install -q 'wandb>=0.31,<0.32'
	$(PY) -c "import sysconfig; print('import site; site.addsitedir(%r)' % sysconfig.get_paths()['purelib'])" \
		> "$$($(WANDB)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/nbsweep-venv.pth"
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
	$(COLAB)/bin/python -m pytest tests/notebook tests/views/test_views.py -m "not slow and not anywidget" -q -p no:cacheprovider

# Every tier but the Colab one, on two workers (a tier alone: `pytest -m runtime`).
test-main: $(VENV)/.stamp
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

# The three need nothing of one another, so they run side by side, each one's output kept
# together. Lint is brief and the Colab tier needs one core for a fraction of the main run,
# whose tests wait on events, not on the clock, so sharing the cores slows them but cannot
# fail them.
# Bytecode first: the tests start hundreds of Python processes (agents, kernels, programs), and
# where PYTHONDONTWRITEBYTECODE is set each would compile nbsweep again (60 ms of CPU apiece).
test: $(VENV)/.stamp $(COLAB)/.stamp $(WANDB)/.stamp services
	$(PY) -m compileall -q nbsweep tests
	$(MAKE) --no-print-directory -j3 --output-sync=target lint test-colab test-main

# The multi-fidelity benchmark (docs/benchmarks-multifidelity.md), then the search benchmark,
# whose docs/benchmarks.md embeds it.
bench: $(VENV)/.stamp
	$(PY) -m benchmarks.multifidelity
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.stamp
	$(PY) -m benchmarks.run --quick

# The fault tier alone, then docs/reliability.md from its figures (make test leaves them in build/).
reliability: $(VENV)/.stamp
	NBSWEEP_RELIABILITY_JSON=build/reliability.json $(PY) -m pytest tests/faults -q -p no:cacheprovider -p no:xdist
	$(PY) -m tests.faults.report build/reliability.json docs/reliability.md

clean:
	rm -rf $(VENV) $(COLAB) $(WANDB) .nbsweep .bench
