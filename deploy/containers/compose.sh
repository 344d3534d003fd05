#!/usr/bin/env bash
# `make compose-up` / `make compose-down`: deploy/compose.yaml with podman-compose (README.md, "Deploy").
# Usage: deploy/containers/compose.sh up|down|ps
#   up: builds the images (build.sh; cached layers make it quick), starts everything, waits until
#       every service's /readyz answers 200 and prints the addresses. down: stops and removes the
#       containers; the volumes (database, broker, documents) stay unless COMPOSE_VOLUMES=remove.
# COMPOSE_ENV: the env file (default deploy/compose.env); COMPOSE_PROJECT: the project's name
# (default flexenroll; another name is another set of containers, network and volumes);
# COMPOSE_OVERRIDE: a further compose file merged over compose.yaml, e.g. more replicas of the
# services (`deploy: {mode: replicated, replicas: 2}` with `ports: !override ["127.0.0.1::8000"]`:
# replicas cannot share a host port); `up` then waits for every replica.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ENV_FILE="${COMPOSE_ENV:-$ROOT/deploy/compose.env}"
PROJECT="${COMPOSE_PROJECT:-flexenroll}"
SERVICES=(identity enrollment review payment notify web)
READY_WAIT_S="${COMPOSE_READY_WAIT_SECONDS:-300}"
compose=("$ROOT/.venv/bin/podman-compose" --env-file "$ENV_FILE" -p "$PROJECT" -f "$ROOT/deploy/compose.yaml")
[ -n "${COMPOSE_OVERRIDE:-}" ] && compose+=(-f "$COMPOSE_OVERRIDE")

# The host address a container's port 8000 is published on, e.g. 127.0.0.1:28001.
published() { podman port "$1" 8000/tcp | sed -n 1p; }

# The containers of a service, one per replica: <project>_<service>_<n>.
replicas() {
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | sort
}

ready() { # CONTAINER: /readyz answers 200
  local address
  address="$(published "$1" 2>/dev/null)" || return 1
  [ -n "$address" ] && python3 -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=3)" \
    "http://$address/readyz" 2>/dev/null
}

cmd_up() {
  "$ROOT/deploy/containers/build.sh"
  "${compose[@]}" up -d >"${TMPDIR:-/tmp}/compose-$PROJECT.log" 2>&1 ||
    { tail -n 40 "${TMPDIR:-/tmp}/compose-$PROJECT.log" >&2; exit 1; }
  local deadline=$((SECONDS + READY_WAIT_S)) name container
  for name in "${SERVICES[@]}"; do
    [ -n "$(replicas "$name")" ] || { echo "compose: no container of $name" >&2; exit 1; }
    for container in $(replicas "$name"); do
      until ready "$container"; do
        if [ $SECONDS -gt "$deadline" ]; then
          echo "compose: $container not ready after ${READY_WAIT_S} s; its last log lines:" >&2
          podman logs --tail 30 "$container" >&2 || true
          exit 1
        fi
        sleep 2
      done
    done
  done
  for name in "${SERVICES[@]}"; do
    for container in $(replicas "$name"); do printf '%-12s http://%s\n' "$name" "$(published "$container")"; done
  done
  printf '%-12s %s\n' PostgreSQL "$(podman port "${PROJECT}_postgres_1" 5432/tcp | sed -n 1p)" \
    Kafka "$(podman port "${PROJECT}_kafka_1" 9094/tcp | sed -n 1p) (SASL/SCRAM-SHA-512)"
}

cmd_down() {
  local volumes=()
  [ "${COMPOSE_VOLUMES:-keep}" = remove ] && volumes=(--volumes)
  "${compose[@]}" down "${volumes[@]}" >/dev/null 2>&1
  echo "compose: project $PROJECT stopped${volumes:+, volumes removed}"
}

case "${1:-}" in
  up | down) "cmd_$1" ;;
  ps) podman ps -a --filter "label=io.podman.compose.project=$PROJECT" ;;
  *) echo "usage: $0 up|down|ps" >&2; exit 2 ;;
esac
