# responses-router: the two commands a fresh machine needs, plus bench and lint.
# Every target creates the virtualenv and installs what it needs itself.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench lint typecheck venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,demo,bedrock,proxy,encryption]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) tests/redis_check.py
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[charts]'
	$(PY) benchmarks/transport.py
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/affinity.py
	$(PY) benchmarks/pick_cost.py
	$(PY) benchmarks/routing_quality.py --png benchmarks/routing_quality.png
	$(PY) benchmarks/load.py
	$(PY) benchmarks/translation.py
	$(PY) benchmarks/sessions.py
	$(PY) benchmarks/cache_affinity.py
	$(PY) benchmarks/rate_limits.py
	$(PY) benchmarks/proxy.py
	$(PY) benchmarks/memory.py

lint: $(STAMP)
	$(PY) -m ruff check router providers checks tests benchmarks examples
	$(PY) -m mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
