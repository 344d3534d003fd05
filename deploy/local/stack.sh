#!/usr/bin/env bash
# The stack file: one file of KEY=value lines describes a local stack (ports, run directory), and
# every script reads it (deploy/local/README.md, "Stacks"). FLEXENROLL_STACK names the file
# (default deploy/local/stack.env); a variable set (non-empty) in the environment wins over its line.
#
# Sourced by the other scripts (`. stack.sh; stack_load "$ROOT"`), or run:
#   deploy/local/stack.sh get NAME...   one value per line (the Makefile asks it this way)
#   deploy/local/stack.sh env           every variable of the stack and every derived one, KEY=value
#
# Derived, unless set: DATABASE_URL, KAFKA_BOOTSTRAP, the URLs the services call each other by
# (IDENTITY_URL, IDENTITY_NOTIFY_URL, REVIEW_ENROLLMENT_URL, WEB_*_URL), ENROLLMENT_BLOB_ROOT, and, when
# DATABASE_URL is this stack's own cluster, DATABASE_ADMIN_URL over its socket. ops/stack.py derives
# the same for flexctl and the Python scripts (tests/unit/test_stack.py holds them to it).

STACK_SERVICES=(identity enrollment review payment notify web)
STACK_REQUIRED=(FLEXENROLL_RUN_DIR PGPORT KAFKA_PORT KAFKA_CONTROLLER_PORT IDENTITY_PORT ENROLLMENT_PORT REVIEW_PORT
  PAYMENT_PORT NOTIFY_PORT WEB_PORT)
STACK_DERIVED=(DATABASE_URL DATABASE_ADMIN_URL KAFKA_BOOTSTRAP IDENTITY_URL IDENTITY_NOTIFY_URL REVIEW_ENROLLMENT_URL
  WEB_ENROLLMENT_URL WEB_REVIEW_URL WEB_PAYMENT_URL WEB_NOTIFY_URL
  ENROLLMENT_BLOB_ROOT)

stack_fail() {
  echo "stack: $*" >&2
  return 1
}

# The file's lines, each unless the environment already has a non-empty value. Parsed, never
# sourced: a stack file is data, and pydantic-settings must read it the same way.
stack_read_file() {
  local file="$1" line key
  [ -f "$file" ] || stack_fail "no stack file $file (FLEXENROLL_STACK)" || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^([A-Z][A-Z0-9_]*)=([^[:space:]\"\'\$\`\\]*)$ ]] ||
      stack_fail "$file: not a KEY=value line: $line" || return 1
    key="${BASH_REMATCH[1]}"
    [ -n "${!key:-}" ] || printf -v "$key" '%s' "${BASH_REMATCH[2]}"
  done <"$file"
}

# True when DATABASE_URL is this stack's own cluster (loopback, this stack's port); its database's
# name is then in STACK_DATABASE.
stack_local_database() {
  [[ "$DATABASE_URL" =~ ^postgres(ql)?://([^@/]*@)?(127\.0\.0\.1|localhost)(:([0-9]+))?(/([^?]*))?(\?.*)?$ ]] &&
    [ "${BASH_REMATCH[5]:-5432}" = "$PGPORT" ] || return 1
  STACK_DATABASE="${BASH_REMATCH[7]:-flexenroll}"
}

stack_load() {
  local root="$1" name port_var metrics_var old
  STACK_FILE="${FLEXENROLL_STACK:-$root/deploy/local/stack.env}"
  stack_read_file "$STACK_FILE" || return 1
  for name in "${STACK_REQUIRED[@]}"; do
    [ -n "${!name:-}" ] || stack_fail "$STACK_FILE sets no $name" || return 1
    [[ "$name" != *PORT || "${!name}" =~ ^[0-9]+$ ]] || stack_fail "$name=${!name} is not a port" || return 1
  done
  [[ "$FLEXENROLL_RUN_DIR" == /* ]] || FLEXENROLL_RUN_DIR="$root/$FLEXENROLL_RUN_DIR"
  for name in "${STACK_SERVICES[@]}"; do
    port_var="${name^^}_PORT" metrics_var="${name^^}_METRICS_PORT"
    # The scripts' former names: refused rather than silently ignored.
    for old in "FLEXENROLL_$port_var" "FLEXENROLL_$metrics_var"; do
      [ -z "${!old:-}" ] || stack_fail "$old is now ${old#FLEXENROLL_} (deploy/local/README.md, \"Stacks\")" || return 1
    done
    [ -n "${!metrics_var:-}" ] || printf -v "$metrics_var" '%s' "$((${!port_var} + 1000))"
  done
  : "${DATABASE_URL:=postgresql://127.0.0.1:$PGPORT/flexenroll}"
  : "${KAFKA_BOOTSTRAP:=127.0.0.1:$KAFKA_PORT}"
  : "${IDENTITY_URL:=http://127.0.0.1:$IDENTITY_PORT}"
  : "${IDENTITY_NOTIFY_URL:=http://127.0.0.1:$NOTIFY_PORT}"
  : "${REVIEW_ENROLLMENT_URL:=http://127.0.0.1:$ENROLLMENT_PORT}"
  : "${WEB_ENROLLMENT_URL:=http://127.0.0.1:$ENROLLMENT_PORT}"
  : "${WEB_REVIEW_URL:=http://127.0.0.1:$REVIEW_PORT}"
  : "${WEB_PAYMENT_URL:=http://127.0.0.1:$PAYMENT_PORT}"
  : "${WEB_NOTIFY_URL:=http://127.0.0.1:$NOTIFY_PORT}"
  : "${ENROLLMENT_BLOB_ROOT:=$FLEXENROLL_RUN_DIR/blobs}"
  # Only this stack's administrator can open its socket; an external database names its own.
  if [ -z "${DATABASE_ADMIN_URL:-}" ] && stack_local_database; then
    DATABASE_ADMIN_URL="postgresql://flexenroll@/$STACK_DATABASE?host=$FLEXENROLL_RUN_DIR/postgres&port=$PGPORT"
  fi
  DATABASE_ADMIN_URL="${DATABASE_ADMIN_URL:-}"
}

# Everything a stack defines, in a stable order.
stack_names() {
  local name
  printf '%s\n' FLEXENROLL_RUN_DIR PGPORT KAFKA_PORT KAFKA_CONTROLLER_PORT
  for name in "${STACK_SERVICES[@]}"; do printf '%s\n' "${name^^}_PORT" "${name^^}_METRICS_PORT"; done
  printf '%s\n' "${STACK_DERIVED[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  stack_load "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  case "${1:-}" in
    get)
      shift
      for name in "$@"; do
        stack_names | grep -qx -- "$name" || stack_fail "unknown stack variable $name"
        printf '%s\n' "${!name}"
      done
      ;;
    env) while read -r name; do printf '%s=%s\n' "$name" "${!name}"; done < <(stack_names) ;;
    *) echo "usage: $0 get NAME... | env" >&2; exit 2 ;;
  esac
fi
