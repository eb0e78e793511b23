# CryptoPipeline developer commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install prepare test test-fast bench lint format run kafka-up kafka-down kafka-status clean \
	chart-tools chart-crds helm-lint chart-test e2e e2e-build

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## virtual environment with the project and its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

test: install prepare  ## every test: prepares its tools first, then real Kafka, API server, ksqlDB
	$(BIN)/pytest -m "not benchmark and not e2e" $(PYTEST_ARGS)

prepare: install  ## fetch/build what the tests need (Kafka jars, kube-apiserver, Helm, promtool, ksqlDB)
	$(BIN)/python tests/prepare.py

test-fast: install  ## tests that need no Kafka broker
	$(BIN)/pytest -m "not benchmark and not kafka and not kube and not ksqldb and not e2e" $(PYTEST_ARGS)

bench: install  ## benchmarks; results go to docs/benchmarks.md by hand
	$(BIN)/pytest tests/benchmarks -m benchmark --benchmark-only \
		--benchmark-columns=min,median,mean,max,rounds $(PYTEST_ARGS)

lint: install  ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run: install  ## the local pipeline (Kafka + coinbase-sim + workloads) until Ctrl-C
	$(BIN)/cryptopipeline run $(ARGS)

kafka-up: install  ## start the local Kafka broker on 127.0.0.1:9092 in the background
	$(BIN)/cryptopipeline kafka up

kafka-down: install  ## stop the local Kafka broker
	$(BIN)/cryptopipeline kafka down

kafka-status: install
	$(BIN)/cryptopipeline kafka status

chart-tools:  ## Helm (built with Go, cached) and promtool/prometheus (Debian's package)
	$(PYTHON) charts/tools.py

chart-crds: install  ## copy the CRDs from k8s/ into the chart (after a CRD change)
	$(BIN)/python charts/sync_crds.py

helm-lint: chart-tools  ## helm lint + template of the chart with every ci/ value set
	@helm=$$($(PYTHON) charts/tools.py --check | sed -n 's/^helm: //p'); \
	for f in "" charts/cryptopipeline/ci/*.yaml; do \
	  echo "== $${f:-default values}"; \
	  $$helm lint --strict charts/cryptopipeline --kube-version 1.36.3 $${f:+-f $$f} || exit 1; \
	  $$helm template cp charts/cryptopipeline --kube-version 1.36.3 $${f:+-f $$f} >/dev/null || exit 1; \
	done

chart-test: install chart-tools  ## the chart, packaging and observability tests
	$(BIN)/pytest tests/chart tests/observability $(PYTEST_ARGS)

clean:  ## remove the working area (stop Kafka first) and caches
	-$(BIN)/cryptopipeline kafka down
	rm -rf .work .pytest_cache .mypy_cache .ruff_cache .benchmarks

e2e-build:  ## packages, kubelet & co., CoreDNS and the images for `make e2e` (cached)
	$(PYTHON) k8s/cluster/cluster.py build

e2e: install  ## the product on a one-node cluster in its own netns (root; cold 30-60 min, warm ~3.5)
	$(BIN)/cryptopipeline kafka fetch  # the namespace has no way out: Kafka's jars come first
	$(PYTHON) k8s/cluster/cluster.py run -- $(abspath $(BIN))/pytest tests/e2e -p no:cacheprovider --timeout=900 $(PYTEST_ARGS)
