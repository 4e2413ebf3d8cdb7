# The two commands of the README:
#   make run    set up (once) and open the visualizer on the bundled network (ARGS="path.pkl --device cpu" to pass options)
#   make test   set up (once) and run lint, type checks and the whole test suite
# Set-up is idempotent: a local virtual environment in .venv, torch==2.13.0 only when torch is missing.

VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.setup-stamp
ARGS      ?=
PYTEST_ARGS ?=

.PHONY: setup run test lint typecheck pytest bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	@$(PY) -m pip install -q ".[dev,onnx]"
	@touch $(STAMP)

run: setup
	$(PY) visualizer.py $(ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy engine torch_utils training

pytest: setup
	@bash scripts/ensure_xvfb.sh || true
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: setup
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
