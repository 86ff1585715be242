# Every habit of the project has a name here.  `make test` is what CI runs.
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: help deps run test lint typecheck pytest generate check-generated bench clean

help:
	@echo "make run        start the exporter on built-in defaults (local Redis and PostgreSQL) on :9847"
	@echo "make test       install what is missing, then lint, typecheck, generated-file check and pytest"
	@echo "make lint | typecheck | pytest | generate | bench"

deps:
	@scripts/install-deps.sh

run: deps
	$(VENV)/bin/stack-exporter $(ARGS)

lint: deps
	$(VENV)/bin/ruff check exporter tests bench
	$(VENV)/bin/ruff format --check exporter tests bench

typecheck: deps
	$(VENV)/bin/mypy

pytest: deps
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

generate: deps
	@true

check-generated: generate
	@git diff --exit-code --stat -- rules dashboards alertmanager docs || \
		(echo "generated files are stale: run 'make generate' and commit" >&2; exit 1)

test: deps lint typecheck check-generated pytest

bench: deps
	$(PY) -m bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
