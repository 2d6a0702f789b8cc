# Two commands on a fresh machine (see README): `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vizkit-installed

.PHONY: install lab gallery gallery-fast test assignments bench train-fast-style clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Open the notebooks in JupyterLab (as root, e.g. in a container, Jupyter needs --allow-root).
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: install
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

## Execute every notebook (full mode) and render it to HTML under build/gallery/.
gallery: install
	$(BIN)/python tools/gallery.py

gallery-fast: install
	VIZKIT_FAST=1 $(BIN)/python tools/gallery.py

## Unit tests, then every notebook executed top to bottom in fast mode by nbval.
test: install
	VIZKIT_FAST=1 VIZKIT_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests notebooks \
		--nbval-lax --nbval-current-env --durations=10 -p no:cacheprovider

## Student releases (nbgrader): solutions replaced by stubs, under build/assignments/release/vizkit/.
## `make assignments NOTEBOOKS="05 07"` releases only those.
assignments: install
	$(BIN)/python tools/assignments.py $(NOTEBOOKS)

## Side-by-side timings against captum / pytorch-grad-cam (not part of the tests).
bench: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,bench]"
	$(BIN)/python benchmarks/run.py

## Retrain the shipped fast-style networks of notebook 12 (about 40 minutes on one CPU thread;
## settings and minutes are recorded in data/fast_style/TRAINING.json). Resumes if interrupted.
train-fast-style: install
	$(BIN)/python -m vizkit.fast_style --steps 1200

clean:
	rm -rf build $(VENV)
