# Everything a fresh machine with only python3 and make needs.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test demo setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# dramatiq-dashboard 0.4.0 declares dramatiq<2 and redis<5, caps that are stale
	# (it works with dramatiq 2.x and redis-py 5+). Resolving it normally would drag
	# dramatiq back to 1.x, so it is installed without its declared dependencies;
	# its real runtime needs (dramatiq, redis, jinja2) come from pyproject.toml.
	$(PY) -m pip install -q --no-deps 'dramatiq-dashboard==0.4.0'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nassav up

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m tools.demo

clean:
	rm -rf $(VENV) .pytest_cache
