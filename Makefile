# Every habit of the project has a name here.  `make test` is what CI runs.
# The `## ` comment on a target's line is its line in `make help` (tests/test_makefile.py
# checks that every target has one).
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
EXTRAS ?=

.PHONY: help run venv dev test-deps deps test lint typecheck pytest image-test generate check-generated bench demo clean

help: ## this list
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-z][a-z-]*:([^=].*)?## / { printf "make %-16s %s\n", $$1, $$2 }' $(firstword $(MAKEFILE_LIST))
	@echo 'ARGS="..."  flags for the exporter (make run) or pytest (make pytest), e.g. make run ARGS="--config.file=config.yml"'

run: venv ## start the exporter on :9847; without ARGS on built-in defaults (local Redis and PostgreSQL)
	$(VENV)/bin/stack-exporter $(ARGS)

# The set-up, split: `make run` needs only the venv; the servers and tools that tests,
# demo and bench start come with `make test`, `make demo` and `make bench`.
venv: ## the .venv with the package: all `make run` needs (EXTRAS=ses adds AWS SES)
	@scripts/install-deps.sh $(EXTRAS)

dev: ## the .venv with the package and its dev tools (ruff, mypy, pytest, jsonnet)
	@scripts/install-deps.sh dev

test-deps: ## the Debian packages tests, demo and bench start (Redis, PostgreSQL, Prometheus, exporters, podman...)
	@scripts/install-test-deps.sh

deps: dev test-deps ## everything `make test` needs: dev venv, Debian packages, Directus (~730 MB, cached)
	@scripts/install-directus.sh >/dev/null

JSONNET_FILES = $(shell find rules dashboards -name '*.jsonnet' -o -name '*.libsonnet')

lint: dev test-deps ## ruff check and format, jsonnetfmt
	$(VENV)/bin/ruff check exporter tests bench scripts peers
	$(VENV)/bin/ruff format --check exporter tests bench scripts peers
	@bad=""; for f in $(JSONNET_FILES); do jsonnetfmt --test "$$f" || bad="$$bad $$f"; done; \
	if [ -n "$$bad" ]; then echo "jsonnet not formatted: run jsonnetfmt -i$$bad" >&2; exit 1; fi

typecheck: dev ## mypy --strict
	$(VENV)/bin/mypy

pytest: deps ## the test suite (real servers); ARGS go to pytest
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

image-test: dev test-deps ## build the Dockerfile on a debootstrapped Debian 12 and run it with podman (pytest runs it too)
	$(PY) -m pytest -q -p no:cacheprovider -m image tests/test_image.py $(ARGS)

generate: dev ## rules/generated and dashboards/generated from jsonnet
	$(PY) -m scripts.generate_rules
	$(PY) -m scripts.generate_dashboards

# Regenerate, then fail if anything generated differs from what is staged (changed,
# deleted or new files alike).  In a fresh clone the index is the commit; under
# pre-commit it is what is about to be committed.
GENERATED := rules/generated dashboards/generated deploy/kubernetes/base/prometheus-rule.yaml
check-generated: generate ## fail if the generated rules or dashboards differ from the committed ones
	@if ! git diff --quiet -- $(GENERATED) || [ -n "$$(git ls-files --others --exclude-standard -- $(GENERATED))" ]; then \
		git status --short -- $(GENERATED); git diff --stat -- $(GENERATED); \
		echo "generated files are stale: run 'make generate' and commit them" >&2; exit 1; fi

test: deps lint typecheck check-generated pytest ## install what is missing, then lint, typecheck, check-generated and pytest (CI)

bench: venv test-deps ## side-by-side benchmarks against the reference exporters (bench/README.md)
	$(PY) -m bench all

# The whole pipeline against the local Redis and PostgreSQL; Ctrl-C stops it (scripts/demo.py).
demo: venv test-deps ## the whole pipeline: exporter, node_exporter, Prometheus, Alertmanager; Ctrl-C stops it
	$(PY) -m scripts.demo

clean: ## remove the venv and the tools' caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
