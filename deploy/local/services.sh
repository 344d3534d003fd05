#!/usr/bin/env bash
# Start/stop the flexenroll services as background processes, no Docker (deploy/local/README.md).
# Usage: deploy/local/services.sh start|stop|status|port|metrics-port [name...]
# Names default to $FLEXENROLL_SERVICES (default "identity"); `stop` without names stops
# every service that has a pid file, so it undoes exactly what earlier starts did.
# The stack file (FLEXENROLL_STACK, default stack.env: stack.sh) gives each service's port
# (<NAME>_PORT, handed over as PORT) and metrics port (<NAME>_METRICS_PORT, handed over as
# METRICS_PORT), the run directory (logs and pid files under <run dir>/services), and what the
# services connect to: DATABASE_URL, KAFKA_BOOTSTRAP and each other's URLs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/local/stack.sh
. "$ROOT/deploy/local/stack.sh"
stack_load "$ROOT"
RUN="$FLEXENROLL_RUN_DIR/services"
PY="${FLEXENROLL_PYTHON:-$ROOT/.venv/bin/python}" # overridable so the script can be tested alone

port_of() {
  local var="${1^^}_PORT"
  echo "${!var:-}"
}

metrics_port_of() {
  local var="${1^^}_METRICS_PORT"
  echo "${!var:-$(($(port_of "$1") + 1000))}"
}

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# The pid from the pid file if it is alive and still runs services.<name> (guards against pid reuse).
running_pid() {
  local pid
  pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-m services.$1" || return 1
  echo "$pid"
}

healthy() {
  "$ROOT/.venv/bin/python" - "http://127.0.0.1:$1/healthz" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

stop_one() {
  local name="$1" pid
  if ! pid="$(running_pid "$name")"; then rm -f "$RUN/$name.pid"; echo "$name: not running"; return; fi
  kill -TERM "$pid"
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
  if alive "$pid"; then echo "$name: still alive after 10 s, killing"; kill -KILL "$pid"; fi
  while alive "$pid"; do sleep 0.1; done
  rm -f "$RUN/$name.pid"
  echo "$name: stopped (pid $pid)"
}

cmd_start() {
  local name port pid why started=() failed=0
  mkdir -p "$RUN"
  for name in "$@"; do
    port="$(port_of "$name")"
    [ -n "$port" ] || { echo "$name: unknown service and no ${name^^}_PORT set" >&2; exit 1; }
    if pid="$(running_pid "$name")"; then echo "$name: already running (pid $pid) at http://127.0.0.1:$port"; continue; fi
    # Start them all first and wait afterwards: on 2 cores the imports overlap nicely.
    echo "--- start $(date -Is)" >>"$RUN/$name.log"
    (
      cd "$ROOT"
      # What the stack derives for the services (an explicit environment variable won in stack_load);
      # not DATABASE_ADMIN_URL: services never act as the administrator.
      export DATABASE_URL KAFKA_BOOTSTRAP IDENTITY_URL IDENTITY_NOTIFY_URL REVIEW_ENROLLMENT_URL ENROLLMENT_BLOB_ROOT \
        WEB_ENROLLMENT_URL WEB_REVIEW_URL WEB_PAYMENT_URL WEB_NOTIFY_URL
      PORT="$port" METRICS_PORT="$(metrics_port_of "$name")" exec setsid "$PY" -m "services.$name" \
        </dev/null >>"$RUN/$name.log" 2>&1
    ) &
    echo $! >"$RUN/$name.pid"
    started+=("$name")
  done
  local deadline=$((SECONDS + 60))
  for name in "${started[@]}"; do
    port="$(port_of "$name")"
    while [ "$SECONDS" -lt "$deadline" ] && running_pid "$name" >/dev/null; do
      if healthy "$port"; then echo "$name: running (pid $(cat "$RUN/$name.pid")) at http://127.0.0.1:$port"; continue 2; fi
      sleep 0.5
    done
    if running_pid "$name" >/dev/null; then why="not healthy on http://127.0.0.1:$port/healthz within 60 s"; else why="exited"; fi
    echo "$name: $why; last log lines of $RUN/$name.log:" >&2
    tail -n 30 "$RUN/$name.log" >&2
    # Alive but not answering: where it waits, for whoever reads this (py-spy comes with `make install`).
    if pid="$(running_pid "$name")" && [ -x "$ROOT/.venv/bin/py-spy" ]; then
      echo "$name: where the process is (py-spy dump --pid $pid):" >&2
      timeout 20 "$ROOT/.venv/bin/py-spy" dump --pid "$pid" >&2 || true
    fi
    stop_one "$name" >/dev/null
    failed=1
  done
  return "$failed"
}

cmd_stop() {
  local name
  for name in "$@"; do stop_one "$name"; done
}

cmd_status() {
  local name pid rc=0
  for name in "$@"; do
    if pid="$(running_pid "$name")"; then echo "$name: running (pid $pid) at http://127.0.0.1:$(port_of "$name")"
    else echo "$name: not running"; rc=1; fi
  done
  return "$rc"
}

action="${1:-}"
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  if [ "$action" = stop ]; then
    # Everything with a pid file, i.e. everything earlier starts launched.
    for f in "$RUN"/*.pid; do [ -e "$f" ] && names+=("$(basename "$f" .pid)"); done
  else
    read -r -a names <<<"${FLEXENROLL_SERVICES:-identity}" # space separated
  fi
fi
case "$action" in
  start | stop | status) [ ${#names[@]} -eq 0 ] || "cmd_$action" "${names[@]}" ;;
  port) for name in "${names[@]}"; do port_of "$name"; done ;; # for the Makefile's table
  metrics-port) for name in "${names[@]}"; do metrics_port_of "$name"; done ;;
  *) echo "usage: $0 start|stop|status|port|metrics-port [service...]" >&2; exit 2 ;;
esac
