# Two commands on a fresh machine (see README): `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vizkit-installed

.PHONY: install lint lab toolbox book-install book book-fast screenshots test test-seeds test-browser test-floors test-colab assignments bench train-fast-style train-texture-network train-code-decoder train-small-cnns train-vit train-sae grade course-install course rehearse clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,lab,opencv]"
	touch $(STAMP)

install: $(STAMP)

## ruff: lint everything, check the formatting of the code (notebooks are linted, not reformatted).
lint: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[lint]"
	$(BIN)/ruff check vizkit tests tools benchmarks notebooks course book/conf.py
	$(BIN)/ruff format --check vizkit tests tools benchmarks course book/conf.py

## Open the notebooks in JupyterLab (as root, e.g. in a container, Jupyter needs --allow-root).
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: install
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

## The toolbox as a web page: Voila serves notebooks/toolbox.ipynb (the app alone, no code), offline,
## at http://localhost:8866 (TOOLBOX_PORT=... for another port).
TOOLBOX_PORT ?= 8866
toolbox: install
	$(BIN)/voila notebooks/toolbox.ipynb --no-browser --port=$(TOOLBOX_PORT)

## The series as a website under build/book/ (Sphinx + MyST-NB, pinned in book/requirements.txt; MathJax
## from npm, book/package-lock.json): every
## notebook executed in full mode and cached in build/book-runs/ (rerun only when it or vizkit/ changed),
## checked (figures too wide, text under 8 pt, warning text), failures listed at the end.
book-install: install
	$(BIN)/python -m pip install -q -c constraints.txt -r book/requirements.txt
	cd book && npm ci --silent --no-audit --no-fund

book: book-install
	$(BIN)/python tools/book.py

## CI's book: no notebook executed but 07 (fast mode), then opened in headless Chromium (tests/test_book.py).
book-fast: book-install
	$(BIN)/python tools/book.py --fast 07
	$(BIN)/python -m pytest tests/test_book.py -m browser -v -p no:cacheprovider

## Browser screenshots of the book's front page and of notebook 07 (needs Chromium) under build/screenshots/.
screenshots:
	$(BIN)/python tools/screenshots.py

## Unit tests, then every notebook executed top to bottom in fast mode by nbval.
## (The Colab rehearsal has its own target; tests marked cuda skip themselves without a GPU.)
## Two workers (pytest-xdist), each notebook whole in one, one torch thread each: two processes with
## two threads each on two cores run many times slower than one thread each.
FAST_ENV := VIZKIT_FAST=1 VIZKIT_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=1 VIZKIT_THREADS=1
WORKERS  ?= 2
PARALLEL := -n $(WORKERS) --dist loadfile
test: install
	$(FAST_ENV) $(BIN)/python -m pytest tests notebooks -m "not colab and not browser" $(PARALLEL) \
		--nbval-lax --nbval-current-env --durations=10 -p no:cacheprovider

## The seed sweep: every notebook in fast mode at VIZKIT_SEED=1, 2, 3 and at 1 and 2 torch threads; lists
## every check that fails under any of them and each notebook's smallest margin (build/sweep/report.md).
## Not part of CI (about 23 minutes on 2 cores: see the ledger); run it before resolving an issue
## that adds a notebook check. SEEDS="4 5" THREADS=1 NOTEBOOKS="09 11" (names or prefixes) narrow it.
SEEDS   ?= 1 2 3
THREADS ?= 1 2
test-seeds: install
	$(BIN)/python tools/sweep.py $(NOTEBOOKS) --seeds $(SEEDS) --threads $(THREADS)

## A real browser (headless Chromium; Debian: apt-get install chromium chromium-driver) clicks the
## toolbox served by Voila and runs notebook 12 in JupyterLab, and the course is rehearsed (as root, after
## make course-install; course/rehearse.py); screenshots in build/screenshots/.
test-browser: install
	$(FAST_ENV) $(BIN)/python -m pytest tests/test_browser.py tests/test_course.py -m browser -v -p no:cacheprovider

## The declared floors (floors.txt = the `>=` bounds of pyproject.toml) in a fresh Python 3.10
## environment: unit tests (not the nbgrader round trip), the browser tests and every notebook in fast
## mode (not again on a planted image set: that is the same notebooks on other pictures).
# python$(1) on PATH or among pyenv's versions (empty if neither has it)
find_python = $(shell PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep '^$(1)' | tail -n 1) \
                pyenv which python$(1) 2>/dev/null || command -v python$(1))
FLOOR_VENV   ?= build/venv-floors
FLOOR_PYTHON ?= $(call find_python,3.10)
test-floors:
	@test -n "$(FLOOR_PYTHON)" || { echo "test-floors needs Python 3.10: set FLOOR_PYTHON=/path/to/python3.10"; exit 1; }
	rm -rf $(FLOOR_VENV) && $(FLOOR_PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -q -c floors.txt -e ".[test,lab,opencv]"
	$(FAST_ENV) $(FLOOR_VENV)/bin/python -m pytest tests notebooks -m "not colab" --ignore tests/test_assignments.py \
		--ignore tests/test_real_set_path.py $(PARALLEL) \
		--nbval-lax --nbval-current-env --durations=5 -p no:cacheprovider

## What Colab does: clone by URL, pip install (no constraints) into a fresh environment, run 01 and 12.
## Colab's Python (3.12) where it is here, else this one.
COLAB_PYTHON ?= $(or $(call find_python,3.12),$(PYTHON))
test-colab: install
	VIZKIT_COLAB_PYTHON=$(COLAB_PYTHON) $(FAST_ENV) $(BIN)/python -m pytest tests/test_colab.py -m colab \
		-p no:cacheprovider -v

## Student releases (nbgrader): solutions replaced by stubs, under build/assignments/release/vizkit/.
## `make assignments NOTEBOOKS="05 07"` releases only those.
assignments: install
	$(BIN)/python tools/assignments.py $(NOTEBOOKS)

## Side-by-side timings against captum / pytorch-grad-cam (not part of the tests).
bench: install
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,bench]"
	$(BIN)/python benchmarks/run.py

## Retrain the shipped fast-style networks of notebook 12 (about 40 minutes on one CPU thread;
## settings and minutes are recorded in vizkit/weights/fast_style/TRAINING.json). Resumes if interrupted.
train-fast-style: install
	$(BIN)/python tools/train_fast_style.py --steps 1200

## Retrain notebook 11's texture network (Ulyanov et al. 2016) for the gravel photo (about 3 minutes on 2 cores;
## recorded in vizkit/weights/texture_networks/TRAINING.json).
train-texture-network: install
	$(BIN)/python tools/train_texture_network.py --texture gravel --steps 600 --seed 2

## Retrain notebook 08's code decoder, the generator prior in miniature (Nguyen et al. 2016; about 18 minutes
## on 2 cores; recorded in vizkit/weights/code_decoders/TRAINING.json).
train-code-decoder: install
	$(BIN)/python tools/train_code_decoder.py --steps 1200 --lr 2e-3 --feature-weight 0.1

## Retrain the two small CNNs of notebook 13's data randomisation test, true and shuffled labels
## (about 5 minutes on 2 cores; recorded in vizkit/weights/small_cnns/TRAINING.json).
train-small-cnns: install
	$(BIN)/python tools/train_small_cnns.py --steps 1000

## Distil notebook 14's small ViT from EfficientNet-Lite0 (about 45 minutes on 2 cores; recorded in
## vizkit/weights/vit/TRAINING.json). The teacher's logits and checkpoints stay in build/vit/: resumes if interrupted.
## Train with Debian's tuxpaint stamps installed (36 objects, as shipped; without them, 3).
train-vit: install
	$(BIN)/python tools/train_vit.py

## Train notebook 15's sparse autoencoders on Lite0's activations (about 10 minutes on 2 cores; recorded in
## vizkit/weights/sae/TRAINING.json).
train-sae: install
	$(BIN)/python tools/train_sae.py --steps 3000

## The course on one server (course/README.md): JupyterHub into this environment (pinned in
## course/requirements.txt), configurable-http-proxy into course/node_modules (course/package-lock.json).
course-install: install
	$(BIN)/python -m pip install -q -c constraints.txt -r course/requirements.txt
	cd course && npm ci --silent --no-audit --no-fund

## JupyterHub for the course (as root, to start each user's server as that user), on HUB_PORT.
HUB_PORT ?= 8000
course: course-install
	$(BIN)/jupyterhub -f course/jupyterhub_config.py --ip 0.0.0.0 --port $(HUB_PORT)

## The course rehearsed end to end as root (course/rehearse.py: users, hub, exchange, Chromium, nbgrader).
rehearse: course-install
	$(BIN)/python course/rehearse.py

## Grade collected submissions in parallel (course/grade.py; course/README.md): SUBMITTED=<dir> holds
## <student>/<assignment>/<notebook>.ipynb; grades.csv and feedback under build/grades/.
SUBMITTED ?= build/assignments/submitted
TIMEOUT   ?= 120
grade: install
	$(BIN)/python course/grade.py $(SUBMITTED) --workers $(WORKERS) --timeout $(TIMEOUT)

clean:
	rm -rf build $(VENV)
