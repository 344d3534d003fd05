# Local development without Docker (deploy/local/README.md). `make up` = install + infra + services.
# All runtime state (database cluster, broker storage, logs, pid files) lives in .run/.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Services that `make up` starts; extend as they appear, e.g. make up SERVICES="identity enrollment".
SERVICES ?= identity enrollment review payment notify
PGPORT ?= 55432
KAFKA_PORT ?= 19092
# What the services and tests connect to: the environment wins, else the local servers. The
# database's address only: each service logs in as its own role (deploy/local/README.md).
PG_URL := $(or $(DATABASE_URL),postgresql://127.0.0.1:$(PGPORT)/flexenroll)
BOOTSTRAP := $(or $(KAFKA_BOOTSTRAP),127.0.0.1:$(KAFKA_PORT))
export PGPORT KAFKA_PORT

VENV := .venv
PY := $(VENV)/bin/python
LOCAL := deploy/local

.PHONY: help install infra-up up down lint test bench schemas

help:
	@echo "make install | infra-up | up [SERVICES=\"identity enrollment ...\"] | down | lint | test | bench | schemas"

# The stamp makes `install` cheap when pyproject.toml has not changed since the last pip run.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev,aliyun]'
	@touch $@

# The registration form PDF embeds a CJK font from Debian's packages.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc

install: $(VENV)/.installed
	@$(LOCAL)/postgres.sh install
	@$(LOCAL)/kafka.sh install
	@test -f $(CJK_FONT) || $(LOCAL)/apt.sh fonts-wqy-microhei

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
	@printf '%-12s %s\n' Logs "$(CURDIR)/.run/ (services/*.log, kafka/broker.log, postgres/postgres.log)"

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

bench:
	DATABASE_URL=$(PG_URL) KAFKA_BOOTSTRAP=$(BOOTSTRAP) $(PY) -m tests.bench

schemas:
	$(PY) -m contracts.generate
