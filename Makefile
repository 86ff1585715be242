# Every habit of the project has a name here.  `make test` is what CI runs.
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: help deps run test lint typecheck pytest generate check-generated bench demo clean

help:
	@echo "make run        start the exporter on built-in defaults (local Redis and PostgreSQL) on :9847"
	@echo "make test       install what is missing, then lint, typecheck, generated-file check and pytest"
	@echo "make lint | typecheck | pytest | generate | bench"

deps:
	@scripts/install-deps.sh
	@scripts/install-directus.sh >/dev/null

run: deps
	$(VENV)/bin/stack-exporter $(ARGS)

JSONNET_FILES = $(shell find rules dashboards -name '*.jsonnet' -o -name '*.libsonnet')

lint: deps
	$(VENV)/bin/ruff check exporter tests bench scripts peers
	$(VENV)/bin/ruff format --check exporter tests bench scripts peers
	@bad=""; for f in $(JSONNET_FILES); do jsonnetfmt --test "$$f" || bad="$$bad $$f"; done; \
	if [ -n "$$bad" ]; then echo "jsonnet not formatted: run jsonnetfmt -i$$bad" >&2; exit 1; fi

typecheck: deps
	$(VENV)/bin/mypy

pytest: deps
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

generate: deps
	$(PY) -m scripts.generate_rules
	$(PY) -m scripts.generate_dashboards

# Regenerate, then fail if anything generated differs from what is staged (changed,
# deleted or new files alike).  In a fresh clone the index is the commit; under
# pre-commit it is what is about to be committed.
GENERATED := rules/generated dashboards/generated
check-generated: generate
	@if ! git diff --quiet -- $(GENERATED) || [ -n "$$(git ls-files --others --exclude-standard -- $(GENERATED))" ]; then \
		git status --short -- $(GENERATED); git diff --stat -- $(GENERATED); \
		echo "generated files are stale: run 'make generate' and commit them" >&2; exit 1; fi

test: deps lint typecheck check-generated pytest

bench: deps
	$(PY) -m bench all

# The whole pipeline against the local Redis and PostgreSQL; Ctrl-C stops it (scripts/demo.py).
demo: deps
	$(PY) -m scripts.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
