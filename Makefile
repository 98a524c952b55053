# make reproduce [PROFILE=smoke|cpu|paper] [DATASET=cifar10] [ARCH=resnet18]
# make test          unit tests, then the notebooks through nbval
# make env           the virtual environment (.venv), only when out of date
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
DATASET ?= cifar10
ARCH ?= resnet18

.PHONY: env reproduce test unit nbval lab clean-smoke

env: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

reproduce: env
	$(PY) -m vinet_utils.pipeline --profile $(PROFILE) --dataset $(DATASET) --arch $(ARCH)

test: unit nbval

unit: env
	$(PY) -m pytest -q tests

# The notebooks run with their small defaults into a throw-away results folder.
nbval: env
	tmp=$$(mktemp -d) && VINET_RESULTS_DIR=$$tmp $(PY) -m pytest -q -p no:cacheprovider \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks; \
	  rc=$$?; rm -rf $$tmp; exit $$rc

lab: env
	$(VENV)/bin/jupyter lab notebooks
