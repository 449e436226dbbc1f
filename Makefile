# maru — developer entry points. Everything runs inside .venv, which `make setup` creates.
#
#   make setup   .venv with what the demo and the tests need (pins: constraints.txt)
#   make demo    the offline tour (no API key, no network)
#   make test    the whole test suite, integration and slow tests included
#   make bench   every benchmark in bench/ (adds the `bench` extra, the peers they time, first)
#   make lint    ruff, then mypy
#
# Shell logic longer than a line lives in scripts/.

VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

export VENV

.PHONY: setup services test demo bench lint clean distclean

setup:
	@bash scripts/setup.sh

services:
	@bash scripts/services.sh

# pytest exits 5 when it collected no tests; an empty suite is not a failure.
test: setup services
	@$(BIN)/pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests collected (treated as success)"; exit 0; fi; \
	exit $$rc

demo: setup
	@$(BIN)/maru demo

bench: setup
	@bash scripts/bench.sh

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/mypy

# Build outputs and caches; `make distclean` also removes the virtualenv.
clean:
	rm -rf build dist .pytest_cache .ruff_cache src/*.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
