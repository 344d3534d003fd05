#!/usr/bin/env bash
# Private local PostgreSQL cluster under the stack's run directory (.run/postgres), no Docker
# (deploy/local/README.md).
# Usage: deploy/local/postgres.sh install|start|stop|status|paths
# The stack file (FLEXENROLL_STACK, default stack.env: stack.sh) gives PGPORT and the run directory.
# A DATABASE_URL that is not this stack's cluster means "use that database": start does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/local/stack.sh
. "$ROOT/deploy/local/stack.sh"
stack_load "$ROOT"
RUN="$FLEXENROLL_RUN_DIR/postgres"
DATA="$RUN/data"
LOG="$RUN/postgres.log"
PORT="$PGPORT"
# Services connect over TCP as their own roles; the administrator only over the socket in $RUN.
URL="postgresql://127.0.0.1:$PORT/flexenroll"
ADMIN_URL="postgresql://flexenroll@/flexenroll?host=$RUN&port=$PORT"

external() { ! stack_local_database; }

apt_install() { "$ROOT/deploy/local/apt.sh" "$@"; }

# Newest installed server version's bin dir (Debian keeps each major in its own folder).
bindir() { find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1; }

# initdb and postgres refuse to run as root: as root we run them as the postgres OS user.
as_owner() {
  # cd /: the caller's working directory may not be readable by that user.
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_running() { [ -f "$DATA/PG_VERSION" ] && as_owner "$(bindir)/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

cmd_install() {
  # The Debian package also creates and starts a system cluster on 5432; we never use it.
  if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then apt_install postgresql; fi
}

# As root: make sure the postgres user exists, owns .run/postgres and can reach it.
prepare_owner() {
  [ "$(id -u)" -eq 0 ] || return 0
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  mkdir -p "$RUN"
  chown postgres: "$RUN"
  # A checkout under e.g. /root (mode 700) is not traversable by postgres; grant search (x) only.
  local d="$RUN"
  while [ "$d" != / ]; do
    d="$(dirname "$d")"
    if ! runuser -u postgres -- test -x "$d"; then echo "postgres: chmod o+x $d so the postgres user can reach $RUN"; chmod o+x "$d"; fi
  done
}

# Our settings, rewritten at every start so that an existing cluster gets them too; postgresql.conf
# includes the file (later lines win over initdb's).
write_config() {
  as_owner tee "$DATA/flexenroll.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh at every start; edits here are lost.
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
# Test-box settings. fsync stays on: the benchmarks measure real commit costs.
fsync = on
# Small OLTP statements: compiling them costs more than it saves, and asyncpg's type
# introspection switches JIT off and on around itself on every new connection (issue 10).
jit = off
password_encryption = scram-sha-256
# Only the OS user running the server (and root) may open the socket: that is what makes the
# socket's trust below the administrator's authentication (deploy/local/README.md).
unix_socket_permissions = 0700
# No error DETAIL (a unique violation's names the duplicate value, e.g. a phone number), HINT,
# CONTEXT or failing statement in the log: docs/personal-data.md, "In the databases".
log_error_verbosity = terse
log_min_error_statement = panic
# Who and which schema (application_name flexenroll-<schema>) wrote a line, never what with.
log_line_prefix = '%m [%p] %q%u@%d %a: '
EOF
  grep -qx "include_if_exists = 'flexenroll.conf'" "$DATA/postgresql.conf" ||
    echo "include_if_exists = 'flexenroll.conf'" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
  # Services: their own role with a password (scram-sha-256) over TCP. The administrators
  # (flexenroll, postgres): only over the socket, never over TCP.
  as_owner tee "$DATA/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh at every start; edits here are lost.
# TYPE  DATABASE  USER                 ADDRESS        METHOD
local   all       all                                 trust
host    all       flexenroll,postgres  127.0.0.1/32   reject
host    all       all                  127.0.0.1/32   scram-sha-256
EOF
}

cmd_start() {
  if external; then echo "postgres: using external DATABASE_URL, not starting a local cluster"; return; fi
  cmd_install
  prepare_owner
  local bin
  bin="$(bindir)"
  mkdir -p "$RUN"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_owner "$bin/initdb" -D "$DATA" --auth-local=trust --auth-host=scram-sha-256 -U postgres \
      --encoding=UTF8 --locale=C.UTF-8 >"$RUN/initdb.log"
  fi
  write_config
  local state="already running (configuration reloaded)"
  if ! pg_running; then
    state="started"
    # Port and socket dir on the command line, so a changed PGPORT applies without re-initdb.
    as_owner "$bin/pg_ctl" start -w -t 60 -D "$DATA" -l "$LOG" -o "-p $PORT -k '$RUN'" >/dev/null ||
      { tail -n 30 "$LOG" >&2; exit 1; }
  else
    as_owner "$bin/pg_ctl" reload -D "$DATA" >/dev/null
  fi
  # The administrator (a superuser, over the socket only) owns the database; the services' roles
  # and schemas are provisioned from it (deploy/local/database.py, kernel.db.provision).
  local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres -d postgres -tA)
  if [ -z "$("${psql[@]}" -c "select 1 from pg_roles where rolname = 'flexenroll'")" ]; then
    "${psql[@]}" -c "create role flexenroll login superuser"
  fi
  if [ -z "$("${psql[@]}" -c "select 1 from pg_database where datname = 'flexenroll'")" ]; then
    "${psql[@]}" -c "create database flexenroll owner flexenroll"
  fi
  echo "postgres: $state at $URL, administrator $ADMIN_URL, log $LOG"
}

cmd_stop() {
  if ! pg_running; then echo "postgres: not running"; return; fi
  as_owner "$(bindir)/pg_ctl" stop -w -m fast -D "$DATA" >/dev/null
  echo "postgres: stopped"
}

cmd_status() {
  if external; then echo "postgres: external DATABASE_URL"; return; fi
  if pg_running; then echo "postgres: running at $URL"; else echo "postgres: not running"; return 1; fi
}

# Where the cluster keeps its data and writes its log (tests/integration/test_postgres_log.py reads it).
cmd_paths() { printf 'data %s\nlog %s\n' "$DATA" "$LOG"; }

case "${1:-}" in
  install | start | stop | status | paths) "cmd_$1" ;;
  *) echo "usage: $0 install|start|stop|status|paths" >&2; exit 2 ;;
esac
