# AXIOM-25 Matrix: `make up` runs the system, `make test` proves it. `make help` lists the rest.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR := .run
API_BIN := target/release/axiom25-api
GRPC_PORT ?= 50051
API_ADMIN_PORT ?= 8081

.PHONY: help test lint unit python-test up down bench bench-linalg clean

help: ## List the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: lint unit python-test ## Every test: formatting, clippy, unit + integration, numpy cross-check

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: ## Unit, property and integration tests of every crate
	$(CARGO) test --workspace --locked

python-test: $(VENV)/.installed ## Cross-check every RPC against numpy.linalg over gRPC
	$(CARGO) build --locked -p axiom25-api
	AXIOM25_API_BIN=target/debug/axiom25-api $(PY) -m pytest -q tests/python

$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

up: ## Build and start the api in the background on 127.0.0.1; returns once it is ready
	$(CARGO) build --release --locked -p axiom25-api
	@mkdir -p $(RUN_DIR)
	@if [ -f $(RUN_DIR)/api.pid ] && kill -0 "$$(cat $(RUN_DIR)/api.pid)" 2>/dev/null; then \
		echo "api already running (pid $$(cat $(RUN_DIR)/api.pid))"; \
	else \
		AXIOM25__SERVER__HOST=127.0.0.1 AXIOM25__SERVER__GRPC_PORT=$(GRPC_PORT) \
		AXIOM25__SERVER__ADMIN_PORT=$(API_ADMIN_PORT) \
		nohup $(API_BIN) > $(RUN_DIR)/api.log 2>&1 & echo $$! > $(RUN_DIR)/api.pid; \
	fi
	@for i in $$(seq 1 100); do \
		if curl -fsS -o /dev/null http://127.0.0.1:$(API_ADMIN_PORT)/readyz; then break; fi; \
		if ! kill -0 "$$(cat $(RUN_DIR)/api.pid)" 2>/dev/null; then echo "api failed to start:"; cat $(RUN_DIR)/api.log; exit 1; fi; \
		sleep 0.1; \
	done
	@curl -fsS -o /dev/null http://127.0.0.1:$(API_ADMIN_PORT)/readyz || { echo "api not ready; see $(RUN_DIR)/api.log"; exit 1; }
	@echo "AXIOM-25 Matrix is up:"
	@echo "  api gRPC        127.0.0.1:$(GRPC_PORT)   (axiom25.matrix.v1.MatrixService, health, reflection)"
	@echo "  api admin       http://127.0.0.1:$(API_ADMIN_PORT)/readyz  /livez  /metrics"
	@echo "  logs            $(RUN_DIR)/api.log        stop with: make down"

down: ## Stop what `make up` started
	@if [ -f $(RUN_DIR)/api.pid ]; then \
		pid=$$(cat $(RUN_DIR)/api.pid); \
		if kill -0 $$pid 2>/dev/null; then kill -TERM $$pid; \
			for i in $$(seq 1 300); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; fi; \
		rm -f $(RUN_DIR)/api.pid; echo "api stopped"; \
	else echo "nothing running"; fi

bench: $(VENV)/.installed ## Benchmarks; writes docs/benchmarks/api.md
	$(PY) tools/bench/api_report.py

bench-linalg: ## Only the criterion benches of every operation
	$(CARGO) bench --locked -p axiom25-api --bench linalg

clean: down ## Remove build output and the Python environment
	$(CARGO) clean
	rm -rf $(VENV) $(RUN_DIR)
