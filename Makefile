# forecastops — developer entry points. A newcomer needs two: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
PYTHON      ?= python3
EXTRAS      := operator,server,train,dev
export FORECASTOPS_CACHE ?= $(HOME)/.cache/forecastops
PYTEST_ARGS ?=

.PHONY: help deps venv binaries cluster-up cluster-down cluster-status lint fmt test test-unit test-integration test-e2e demo bench clean images image-scan

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## Install the Debian packages the tests need (PostgreSQL, Redis, Prometheus, wrk, containerd, ...)
	@bash hack/install-system-deps.sh
	@bash hack/install-node-deps.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@echo "[venv] installing forecastops[$(EXTRAS)] into $(VENV)"
	@$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

venv: $(VENV)/.installed ## Create .venv with every Python dependency

binaries: ## Build Kubernetes (incl. kubelet, kube-proxy), etcd, kwok, helm, CoreDNS, metrics-server, pause (cached in $FORECASTOPS_CACHE)
	@bash hack/build-binaries.sh >/dev/null

images: venv ## Build the server and operator images with buildah (docs/images.md); print their sizes
	@bash hack/install-image-tools.sh
	@$(PY) -m devenv.images build

image-scan: images ## Audit both images: pip-audit of their Python packages, pending Debian updates
	@$(PY) -m devenv.images scan

cluster-up: venv binaries ## Start the local control plane; kubeconfig in .cluster/kubeconfig
	@$(PY) -m devenv.cluster up

cluster-down: ## Stop exactly the processes cluster-up started
	@test -x $(PY) && $(PY) -m devenv.cluster down || true

cluster-status: venv
	@$(PY) -m devenv.cluster status

lint: venv ## ruff lint and format check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

fmt: venv
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

test: deps venv binaries images ## Every test: lint, unit, integration (real control plane and services), end to end
	@$(MAKE) --no-print-directory lint
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## Only the fast unit tests (no cluster, no services)
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: deps venv binaries
	@$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: deps venv binaries
	@$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

demo: deps venv binaries ## Set everything up and run the main job
	@$(PY) -m devenv.demo $(DEMO_ARGS)

bench: deps venv ## Benchmarks (side by side with the peers); results in bench/results/
	@$(PY) -m bench

clean: cluster-down
	rm -rf .cluster .pytest_cache .ruff_cache
