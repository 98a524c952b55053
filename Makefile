# make reproduce [PROFILE=smoke|cpu|paper|cpu-cifar100] [DATASET=cifar10] [ARCH=resnet18] [SET="seeds=5 pool=gap"]
#                    [RESULTS=runs] [STAGES="05 06"]: your runs go to runs/ (ignored by git); RESULTS=results
#                    remakes the committed results in place; STAGES runs only those notebooks
# make sweep         choose a profile's VI-Net values on a validation split (needs a finished 01)
# make protocol      choose how each head is trained (Optuna), on a validation split, equal trials
#                    per head [VARIANTS="tiny small"] [TRIALS=8] [E2E=tiny] [E2E_TRIALS=4] [STORAGE=url]
# make budget        each head's test accuracy against the end-to-end budget (hours on 2 cores)
#                    [VARIANTS="tiny small"] [BUDGETS="2 6 18"] [SEEDS=3] [E2E_FROM=profile]
# make reference     every head end to end under one recipe fixed in advance, with a sweep of its
#                    learning rate at 18 epochs (about 10 hours on 2 cores; resumable)
#                    [VARIANTS="tiny small"] [BUDGETS="2 6 18"] [SEEDS=3]
# make study         the base-quality study's figure and results file, from the committed runs
# make study-run     train the study's bases and run notebooks 01-05 on each (hours on 2 cores)
# make readme        regenerate the README's and docs/ pages' numbers from the results files
# make test          unit tests, then the notebooks through nbval
# make env           the virtual environment (.venv), only when out of date
# make lab           JupyterLab at the repository root, opening index.ipynb (the read-along)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
RESULTS ?= runs
# DATASET and ARCH: empty takes the profile's own, else cifar10 and resnet18.
DATASET ?=
ARCH ?=
SET ?=
STAGES ?=
VARIANTS ?= tiny small
E2E ?=
TRIALS ?= 8
E2E_TRIALS ?= 4
STORAGE ?=
BUDGETS ?= 2 6 18
SEEDS ?= 3
E2E_FROM ?=

.PHONY: env reproduce table sweep protocol budget reference study study-run readme notebooks test unit nbval lab

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

reproduce: env
	$(PY) -m vinet_utils.workflow.pipeline --profile $(PROFILE) --results-dir $(RESULTS) $(if $(DATASET),--dataset $(DATASET)) \
	  $(if $(ARCH),--arch $(ARCH)) $(foreach s,$(SET),--set $(s)) $(if $(STAGES),--stages $(STAGES))

# The validation sweep behind a profile's VI-Net values (on the run's cached latents).
sweep: env
	$(PY) -m vinet_utils.experiments.sweep --profile $(if $(filter auto,$(PROFILE)),cpu,$(PROFILE)) \
	  $(if $(DATASET),--dataset $(DATASET)) $(if $(ARCH),--arch $(ARCH)) --variants $(VARIANTS)

# How every compared head is trained (projection mode, learning rate), equal trials each.
protocol: env
	$(PY) -m vinet_utils.experiments.protocol --profile $(if $(filter auto,$(PROFILE)),cpu,$(PROFILE)) \
	  $(if $(DATASET),--dataset $(DATASET)) $(if $(ARCH),--arch $(ARCH)) --variants $(VARIANTS) \
	  --trials $(TRIALS) $(if $(E2E),--end-to-end $(E2E) --e2e-trials $(E2E_TRIALS)) \
	  $(if $(STORAGE),--storage $(STORAGE))

# The budget curve on a finished run whose profile holds its searched settings.
budget: env
	$(PY) -m vinet_utils.experiments.budget --profile $(if $(filter auto,$(PROFILE)),cpu,$(PROFILE)) \
	  $(if $(DATASET),--dataset $(DATASET)) $(if $(ARCH),--arch $(ARCH)) \
	  --variants $(VARIANTS) --budgets $(BUDGETS) --seeds $(SEEDS) \
	  $(if $(E2E_FROM),--e2e-from $(E2E_FROM))

# The reference protocol (docs/method.md §7) on a finished run with a held-out split.
reference: env
	$(PY) -m vinet_utils.experiments.reference --profile $(if $(filter auto,$(PROFILE)),cpu,$(PROFILE)) \
	  $(if $(DATASET),--dataset $(DATASET)) $(if $(ARCH),--arch $(ARCH)) \
	  --variants $(VARIANTS) --budgets $(BUDGETS) --seeds $(SEEDS) $(if $(CURVE_ONLY),--curve-only)

study: env
	$(PY) -m vinet_utils.experiments.study

study-run: env
	$(PY) -m vinet_utils.experiments.study run

readme: env
	$(PY) -m vinet_utils.report

# Rebuild only the table from an existing run's results files.
table: env
	$(PY) -c "from vinet_utils import pipeline as p; p.table_only('$(PROFILE)', '$(DATASET)', '$(ARCH)')"

# Re-execute the committed notebooks in place with their small defaults (for maintainers).
notebooks: env
	@tmp=$$(mktemp -d); for nb in notebooks/0*.ipynb; do \
	  VINET_RESULTS_DIR=$$tmp VINET_PLAIN_PROGRESS=1 $(VENV)/bin/papermill --no-progress-bar --cwd notebooks $$nb $$nb || exit 1; \
	done; rm -rf $$tmp; $(PY) -m vinet_utils.workflow.pipeline --tidy notebooks/0*.ipynb

test: unit nbval

unit: env
	$(PY) -m pytest -q tests

# The notebooks run with their small defaults into a throw-away results folder, on
# $(VINET_DATA_DIR) when it is set, else on a synthetic dataset made for the purpose.
nbval: env
	@tmp=$$(mktemp -d); \
	if [ -z "$$VINET_DATA_DIR" ] || [ ! -d "$$VINET_DATA_DIR" ]; then \
	  echo "VINET_DATA_DIR is not set: the notebooks run on synthetic data"; \
	  $(PY) -m vinet_utils.workflow.synthetic $$tmp/data >/dev/null; \
	  export VINET_DATA_DIR=$$tmp/data VINET_SYNTHETIC_DATA=1; fi; \
	VINET_RESULTS_DIR=$$tmp/results VINET_PLAIN_PROGRESS=1 $(PY) -m pytest -q -p no:cacheprovider -W ignore::UserWarning \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks; \
	rc=$$?; rm -rf $$tmp; exit $$rc

# JupyterLab serves the whole repository (notebooks/, results/, docs/) and opens the
# read-along index.ipynb first.
lab: env
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) index.ipynb
