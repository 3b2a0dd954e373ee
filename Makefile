# `make demo` runs the main job, `make test` passes the tests; both install into $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
# setup.cfg's extras to install, e.g. EXTRAS=test,torch (CI: the torchvision parity test runs).
EXTRAS ?= test
PY := $(VENV)/bin/python
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install demo test lint test-slow test-learning test-all clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	$(PY) -m pyramid_fas_jax.faces.face_mesh --fetch
	touch $(STAMP)

demo: install
	$(VENV)/bin/pyramid-fas demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-learning: install
	$(PY) -m pytest -m learning $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -m "" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
