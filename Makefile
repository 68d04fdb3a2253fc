# dbench: set-up, demo, tests and benchmarks. See README.md.
#
# `make demo` and `make test` create .venv on first use and refresh it when pyproject.toml
# changes. On a machine without an NVIDIA GPU, torch is pinned to its CPU build through
# constraints-cpu.txt, so a loose `torch>=` never pulls the multi-GB CUDA packages.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU pin applies unless an NVIDIA driver is present (or TORCH_CPU=0 is given).
TORCH_CPU ?= $(if $(shell command -v nvidia-smi 2>/dev/null),0,1)
CONSTRAINTS := $(if $(filter 1,$(TORCH_CPU)),-c constraints-cpu.txt,)

MAIN_JOB ?= run --model betavae --beta 4 --dataset dsprites

.PHONY: setup demo test lint bench figures defaults clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/dbench $(MAIN_JOB)

test: setup
	$(BIN)/ruff check dbench tests benchmarks examples
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/metric_speed.py
	$(BIN)/python benchmarks/render_speed.py

# the README's figures, from the committed study records
figures: setup
	DBENCH=$(BIN)/dbench bash docs/figures/regenerate.sh

# the built-in models' defaults that leaderboards label rows with (no torch at labelling time)
defaults: setup
	$(BIN)/python -c "from dbench.reporting.identity import write_builtin_defaults; write_builtin_defaults()"

clean-venv:
	rm -rf $(VENV)
