#!/usr/bin/env bash
# Private local PostgreSQL cluster under .run/postgres, no Docker (deploy/local/README.md).
# Usage: deploy/local/postgres.sh install|start|stop|status
# Env: PGPORT (55432). DATABASE_URL set means "use that database": start does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="$ROOT/.run/postgres"
DATA="$RUN/data"
LOG="$RUN/postgres.log"
PORT="${PGPORT:-55432}"
URL="postgresql://flexenroll@127.0.0.1:$PORT/flexenroll"

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

cmd_start() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "postgres: using external DATABASE_URL, not starting a local cluster"; return; fi
  cmd_install
  prepare_owner
  local bin
  bin="$(bindir)"
  mkdir -p "$RUN"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    as_owner "$bin/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >"$RUN/initdb.log"
    # Test-box settings. fsync stays on: the benchmarks measure real commit costs.
    cat >>"$DATA/postgresql.conf" <<EOF

# --- flexenroll local settings (deploy/local/postgres.sh)
listen_addresses = '127.0.0.1'
max_connections = 200
shared_buffers = 256MB
fsync = on
EOF
  fi
  local state="already running"
  if ! pg_running; then
    state="started"
    # Port and socket dir on the command line, so a changed PGPORT applies without re-initdb.
    as_owner "$bin/pg_ctl" start -w -t 60 -D "$DATA" -l "$LOG" -o "-p $PORT -k '$RUN'" >/dev/null ||
      { tail -n 30 "$LOG" >&2; exit 1; }
  fi
  # Role and database for the services; a superuser is fine on a local test box.
  local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tA)
  if [ -z "$("${psql[@]}" -c "select 1 from pg_roles where rolname = 'flexenroll'")" ]; then
    "${psql[@]}" -c "create role flexenroll login superuser"
  fi
  if [ -z "$("${psql[@]}" -c "select 1 from pg_database where datname = 'flexenroll'")" ]; then
    "${psql[@]}" -c "create database flexenroll owner flexenroll"
  fi
  echo "postgres: $state at $URL, log $LOG"
}

cmd_stop() {
  if ! pg_running; then echo "postgres: not running"; return; fi
  as_owner "$(bindir)/pg_ctl" stop -w -m fast -D "$DATA" >/dev/null
  echo "postgres: stopped"
}

cmd_status() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "postgres: external DATABASE_URL"; return; fi
  if pg_running; then echo "postgres: running at $URL"; else echo "postgres: not running"; return 1; fi
}

case "${1:-}" in
  install | start | stop | status) "cmd_$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
