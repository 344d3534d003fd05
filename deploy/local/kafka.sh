#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) from plain Maven jars, no Docker (deploy/local/README.md).
# Usage: deploy/local/kafka.sh install|start|stop|status
# The stack file (FLEXENROLL_STACK, default stack.env: stack.sh) gives KAFKA_PORT,
# KAFKA_CONTROLLER_PORT and the run directory (storage, log, pid file under <run dir>/kafka);
# a KAFKA_BOOTSTRAP pointing anywhere else means "use that external broker" and start does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=deploy/local/stack.sh
. "$ROOT/deploy/local/stack.sh"
stack_load "$ROOT"
KDIR="$ROOT/deploy/local/kafka"
LIBS="$KDIR/libs"
RUN="$FLEXENROLL_RUN_DIR/kafka"
PIDFILE="$RUN/kafka.pid"
LOG="$RUN/broker.log"
PROPS="$RUN/server.properties"
PORT="$KAFKA_PORT"
CPORT="$KAFKA_CONTROLLER_PORT"
LOCAL="127.0.0.1:$PORT"
# Written after a format that created the admin SCRAM user: storage formatted before the broker
# required authentication has no admin, and nothing could ever log in to it.
SASL_MARKER="$RUN/data.scram-admin"

apt_install() { "$ROOT/deploy/local/apt.sh" "$@"; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp, no nc needed).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie (a child we started ourselves stays a zombie until this script exits).
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# The pid in the pid file, if that process is alive AND is our broker (guards against pid reuse).
running_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$PROPS" || return 1
  echo "$pid"
}

# An explicit KAFKA_BOOTSTRAP that is not our local broker means an external cluster.
external() { [ "$KAFKA_BOOTSTRAP" != "$LOCAL" ] && [ "$KAFKA_BOOTSTRAP" != "localhost:$PORT" ]; }

cmd_install() {
  command -v java >/dev/null || apt_install default-jre-headless # Debian 12: OpenJDK 17
  command -v mvn >/dev/null || apt_install maven
  # The stamp records which pom the jars came from; a newer pom means refetch from scratch
  # so jars of removed or downgraded dependencies do not linger on the classpath.
  if ! compgen -G "$LIBS/*.jar" >/dev/null || [ "$KDIR/pom.xml" -nt "$LIBS/.stamp" ]; then
    echo "kafka: fetching broker jars from Maven Central into $LIBS"
    rm -rf "$LIBS"
    mkdir -p "$RUN"
    # Output goes to a file: Debian's Maven 3.8 prints stray ANSI resets even with -q -B.
    (cd "$KDIR" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs -DincludeScope=runtime) \
      >"$RUN/mvn.log" 2>&1 || { cat "$RUN/mvn.log" >&2; exit 1; }
    touch "$LIBS/.stamp"
  fi
}

cmd_start() {
  if external; then echo "kafka: using external KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP, not starting a local broker"; return; fi
  if pid="$(running_pid)"; then echo "kafka: already running (pid $pid) at $LOCAL"; return; fi
  # Someone else on our port would make the wait below succeed against the wrong process.
  if port_open "$PORT" || port_open "$CPORT"; then
    echo "kafka: port $PORT or $CPORT is already in use by another process" >&2; exit 1
  fi
  cmd_install
  mkdir -p "$RUN"
  rm -f "$PIDFILE"
  # The admin's password is the shipped development secret (kernel.settings.local_secret), which
  # only development accepts: this broker is a local development broker and nothing else.
  local admin_password
  if [ ! -x "$ROOT/.venv/bin/python" ]; then echo "kafka: no .venv yet; run 'make install' first" >&2; exit 1; fi
  admin_password="$(cd "$ROOT" && PYTHONPATH="$ROOT" "$ROOT/.venv/bin/python" -c \
    'from kernel.settings import local_secret; print(local_secret("kafka", "admin"))')"
  (umask 077 && sed -e "s|@KAFKA_PORT@|$PORT|g" -e "s|@KAFKA_CONTROLLER_PORT@|$CPORT|g" -e "s|@DATA_DIR@|$RUN/data|g" \
    -e "s|@ADMIN_PASSWORD@|$admin_password|g" "$KDIR/server.properties.template" >"$PROPS")
  if [ -f "$RUN/data/meta.properties" ] && [ ! -f "$SASL_MARKER" ]; then
    echo "kafka: $RUN/data was formatted before the broker required authentication (no admin user);" \
      "reformatting it: the local topics and their events are gone, 'make infra-up' creates them again"
    rm -rf "$RUN/data"
  fi
  # KRaft storage must be formatted exactly once; meta.properties marks a finished format.
  if [ ! -f "$RUN/data/meta.properties" ]; then
    rm -rf "$RUN/data" "$SASL_MARKER"
    java -cp "$LIBS/*" kafka.tools.StorageTool format -t "$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid)" \
      -c "$PROPS" --add-scram "SCRAM-SHA-512=[name=admin,password=$admin_password]" >>"$LOG" 2>&1 ||
      { tail -n 30 "$LOG" >&2; exit 1; }
    touch "$SASL_MARKER"
  fi
  # setsid: own session, so Ctrl-C in the calling terminal or make does not kill the broker.
  # stdin/stdout/stderr detached, so callers piping our output do not hang on the broker.
  echo "--- start $(date -Is)" >>"$LOG"
  setsid java -Xmx512m -Dlog4j2.configurationFile="$KDIR/log4j2.yaml" -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 120); do
    if port_open "$PORT"; then
      echo "kafka: running (pid $(cat "$PIDFILE")) at $LOCAL, log $LOG"; return
    fi
    if ! running_pid >/dev/null; then break; fi
    sleep 0.5
  done
  echo "kafka: broker did not come up on $LOCAL within 60 s; last log lines:" >&2
  tail -n 30 "$LOG" >&2
  cmd_stop >/dev/null
  exit 1
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then rm -f "$PIDFILE"; echo "kafka: not running"; return; fi
  kill -TERM "$pid"
  # A clean shutdown flushes logs and avoids recovery on the next start; give it 60 s.
  for _ in $(seq 120); do alive "$pid" || break; sleep 0.5; done
  if alive "$pid"; then echo "kafka: pid $pid ignored TERM, killing"; kill -KILL "$pid"; fi
  while alive "$pid"; do sleep 0.2; done
  rm -f "$PIDFILE"
  echo "kafka: stopped (pid $pid)"
}

cmd_status() {
  if external; then echo "kafka: external at $KAFKA_BOOTSTRAP"; return; fi
  if pid="$(running_pid)"; then echo "kafka: running (pid $pid) at $LOCAL"; else echo "kafka: not running"; return 1; fi
}

case "${1:-}" in
  install | start | stop | status) "cmd_$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
