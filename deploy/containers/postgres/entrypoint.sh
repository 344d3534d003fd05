#!/usr/bin/env bash
# The PostgreSQL container's start: a cluster in $PGDATA on first start (its administrator
# POSTGRES_ADMIN_USER, default flexenroll, with POSTGRES_ADMIN_PASSWORD, and the database
# flexenroll), the project's settings at every start, then the server in the foreground.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
ADMIN="${POSTGRES_ADMIN_USER:-flexenroll}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_ADMIN_PASSWORD:?set POSTGRES_ADMIN_PASSWORD for the first start}"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_ADMIN_PASSWORD" >"$pwfile"
  "$BIN/initdb" -D "$PGDATA" -U "$ADMIN" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "CREATE DATABASE flexenroll" | "$BIN/postgres" --single -D "$PGDATA" -j postgres >/dev/null
  echo "include_if_exists = 'flexenroll.conf'" >>"$PGDATA/postgresql.conf"
  echo "postgres: cluster created in $PGDATA, administrator $ADMIN"
fi

# As deploy/local/postgres.sh writes them (its comments say why), but on every interface.
cat >"$PGDATA/flexenroll.conf" <<CONF
listen_addresses = '*'
max_connections = ${POSTGRES_MAX_CONNECTIONS:-200}
shared_buffers = ${POSTGRES_SHARED_BUFFERS:-256MB}
fsync = on
password_encryption = scram-sha-256
unix_socket_permissions = 0700
log_error_verbosity = terse
log_min_error_statement = panic
log_line_prefix = '%m [%p] %q%u@%d %a: '
CONF
# Inside the container, the socket (mode 0700: this user only); on the network, every role,
# the administrator included, with its password.
cat >"$PGDATA/pg_hba.conf" <<HBA
local   all   all                 trust
host    all   all   0.0.0.0/0     scram-sha-256
host    all   all   ::/0          scram-sha-256
HBA

exec "$BIN/postgres" -D "$PGDATA"
