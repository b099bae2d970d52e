# Two commands on a fresh machine: `make demo` and `make test` (see README).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/.tools/bin
export PATH := $(BIN):$(PATH)

.PHONY: all tools venv test-material test unit lint demo bench clean image image-test image-arm64

all: test

tools:
	tools/install.sh

$(VENV)/.installed: requirements-dev.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

venv: $(VENV)/.installed

test-material:
	tools/test-material.sh

test: tools venv test-material
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests that need neither timoni, flux nor the registry: tests/unit/ (it mirrors gitops_action/),
# and those marked `unit` in tests/e2e/ (the end-to-end tests, named by behaviour). Some read test
# material (GitHub's webhook examples) and `--version` looks for the tools: both installed first.
unit: tools venv test-material
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: tools venv
	$(VENV)/bin/ruff check gitops_action tests bench tools entrypoint.py
	$(VENV)/bin/ruff format --check gitops_action tests bench tools entrypoint.py
	$(VENV)/bin/mypy --strict
	$(VENV)/bin/hadolint Dockerfile
	$(BIN)/actionlint

demo: tools venv
	$(PY) tools/demo.py

# The action's image, built here from the Dockerfile as GitHub builds it, on stand-in base images
# (no registry to pull them from): tools/image.sh. Needs root; installs buildah and debootstrap
# with apt when missing. Cached under .tools/image (IMAGE_CACHE).
image:
	tools/image.sh build

# The image run as GitHub's runner runs a Docker action (tests/image/, not part of `make test`).
image-test: tools venv test-material image
	$(PY) -m pytest tests/image $(PYTEST_ARGS)

# The tools stage cross-compiled for linux/arm64: checks its binaries are arm64 ELF files.
image-arm64:
	tools/image.sh arm64

bench: tools venv test-material
	$(PY) bench/bench_planner.py
	$(PY) bench/bench_pipeline.py

clean:
	rm -rf $(VENV) .tools demo-out
