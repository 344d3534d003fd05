# Local development without Docker (deploy/local/README.md). `make up` = install + infra + services.
# All runtime state (database cluster, broker storage, logs, pid files) lives in the stack's run
# directory: .run/ for the default stack, deploy/local/stack.env.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Services that `make up` starts; extend as they appear, e.g. make up SERVICES="identity enrollment".
SERVICES ?= identity enrollment review payment notify web
# The stack's ports and run directory (deploy/local/README.md, "Stacks"): make up STACK=path/x.env,
# else $FLEXENROLL_STACK, else deploy/local/stack.env. Every script reads the file it names.
STACK ?= $(or $(FLEXENROLL_STACK),deploy/local/stack.env)
export FLEXENROLL_STACK := $(abspath $(STACK))
# What the services and tests connect to: the environment (or make's command line, e.g. PGPORT=…)
# wins, else the stack's servers. Expanded in the recipe's shell, which sees those overrides. The
# database's address only: each service logs in as its own role (deploy/local/README.md).
PG_URL = $$(deploy/local/stack.sh get DATABASE_URL)
BOOTSTRAP = $$(deploy/local/stack.sh get KAFKA_BOOTSTRAP)

VENV := .venv
PY := $(VENV)/bin/python
LOCAL := deploy/local

.PHONY: help install infra-up up down lint test bench load chaos schemas compose-up compose-down test-containers

help:
	@echo "make install | infra-up | up [SERVICES=\"identity enrollment ...\"] | down | lint | test | bench | load | chaos | schemas | compose-up | compose-down | test-containers"

# The stamp makes `install` cheap when neither pyproject.toml nor the lock changed since the last pip
# run. Every version comes from requirements.lock (README.md, "Deploy"), as in CI and the app image.
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev,aliyun]'
	@touch $@

# The registration form PDF embeds a CJK font from Debian's packages.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
# The web pages' tests drive Debian's Chromium with Playwright (tests/web); Playwright's own
# browser downloads are never used.
CHROMIUM := /usr/bin/chromium

install: $(VENV)/.installed
	@$(LOCAL)/postgres.sh install
	@$(LOCAL)/kafka.sh install
	@test -f $(CJK_FONT) || $(LOCAL)/apt.sh fonts-wqy-microhei
	@test -x $(CHROMIUM) || $(LOCAL)/apt.sh chromium

infra-up:
	@$(LOCAL)/postgres.sh start
	@$(LOCAL)/kafka.sh start
	@KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(PY) $(LOCAL)/topics.py

# Every service's role and schema first (deploy/local/database.py): services never create them.
up: install infra-up
	@DATABASE_URL=$(PG_URL) $(PY) $(LOCAL)/database.py
	@DATABASE_URL=$(PG_URL) KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(LOCAL)/services.sh start $(SERVICES)
	@echo
	@printf '%-12s %s\n' PostgreSQL "$(PG_URL)" Kafka "$(BOOTSTRAP)"
	@for s in $(SERVICES); do \
	  port="$$($(LOCAL)/services.sh port "$$s")"; \
	  metrics="$$($(LOCAL)/services.sh metrics-port "$$s")"; \
	  printf '%-12s %s\n' "$$s" "http://127.0.0.1:$$port  (OpenAPI: /openapi.json; metrics: http://127.0.0.1:$$metrics/metrics)"; \
	done
	@printf '%-12s %s\n' Logs "$$($(LOCAL)/stack.sh get FLEXENROLL_RUN_DIR)/ (services/*.log, kafka/broker.log, postgres/postgres.log)"

# Stops exactly what up started, by pid files (and the private cluster's data dir).
down:
	@$(LOCAL)/services.sh stop
	@$(LOCAL)/kafka.sh stop
	@$(LOCAL)/postgres.sh stop

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# On a fresh clone too: installs what is missing and starts PostgreSQL and Kafka when they are not
# running (left running after, like `make infra-up`; `make down` stops them); what it found running
# it uses and leaves alone.
test: install infra-up
	@$(MAKE) --no-print-directory lint
	DATABASE_URL=$(PG_URL) KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(VENV)/bin/pytest -q

# Journeys through `make up`'s stack at a fixed offered rate and their CPU per process
# (docs/benchmarks.md); e.g. make load LOAD_ARGS="--rate 3 --count 90". Figures also in <run dir>/load.json.
load: up
	DATABASE_URL=$(PG_URL) KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(PY) -m tests.load --accounts-ahead --accounts-rate 3 \
	  --count 60 --rate 2 --json "$$($(LOCAL)/stack.sh get FLEXENROLL_RUN_DIR)/load.json" $(LOAD_ARGS)

# Journeys through a stack of its own (free ports, under /tmp) while its services are killed with
# SIGKILL and its broker and PostgreSQL restarted; then the counts that must hold (tests/chaos).
# The default stack is not touched. A short version runs in `make test` (tests/e2e/test_chaos.py).
chaos: install
	$(PY) -m tests.chaos $(CHAOS_ARGS)

bench:
	DATABASE_URL=$(PG_URL) KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(PY) -m tests.bench

schemas:
	$(PY) -m contracts.generate

# Containers with podman (README.md, "Deploy"): images from deploy/containers/build.sh, the system
# from deploy/compose.yaml with the settings and secrets of COMPOSE_ENV; nothing of `make up`'s is
# touched (other ports, other names). compose-down keeps the volumes.
COMPOSE_ENV ?= deploy/compose.env

compose-up: $(VENV)/.installed
	@COMPOSE_ENV=$(abspath $(COMPOSE_ENV)) deploy/containers/compose.sh up

compose-down:
	@COMPOSE_ENV=$(abspath $(COMPOSE_ENV)) deploy/containers/compose.sh down

# Builds the images, then the journey against a compose deployment of the test's own (tests/containers).
test-containers: $(VENV)/.installed
	deploy/containers/build.sh
	TEST_TIME_LIMIT_SECONDS=900 $(VENV)/bin/pytest -q -m containers tests/containers
