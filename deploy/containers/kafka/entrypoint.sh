#!/usr/bin/env bash
# The broker container's start: render server.properties (listeners, the admin's password),
# format the storage once with the admin's SCRAM credential (as deploy/local/kafka.sh), run.
# KAFKA_ADMIN_PASSWORD (required), KAFKA_ADVERTISED_INTERNAL (kafka:9092: how the other containers
# reach it), KAFKA_ADVERTISED_EXTERNAL (127.0.0.1:9094: how clients outside do), KAFKA_HEAP_OPTS.
set -euo pipefail

: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
HOME_DIR=/opt/kafka
DATA=/var/lib/kafka/data
PROPS=/var/lib/kafka/server.properties
CLASSPATH_JARS="$HOME_DIR/libs/*"

props="$(<"$HOME_DIR/server.properties.template")"
props="${props//@ADMIN_PASSWORD@/$KAFKA_ADMIN_PASSWORD}"
props="${props//@INTERNAL@/${KAFKA_ADVERTISED_INTERNAL:-kafka:9092}}"
props="${props//@EXTERNAL@/${KAFKA_ADVERTISED_EXTERNAL:-127.0.0.1:9094}}"
props="${props//@DATA_DIR@/$DATA}"
(umask 077 && printf '%s\n' "$props" >"$PROPS")

# KRaft storage is formatted exactly once; meta.properties marks a finished format.
if [ ! -f "$DATA/meta.properties" ]; then
  cluster="$(java -cp "$CLASSPATH_JARS" kafka.tools.StorageTool random-uuid)"
  java -cp "$CLASSPATH_JARS" kafka.tools.StorageTool format -t "$cluster" -c "$PROPS" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"
fi

# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of options
exec java ${KAFKA_HEAP_OPTS:--Xmx512m} -Dlog4j2.configurationFile="$HOME_DIR/log4j2.yaml" \
  -cp "$CLASSPATH_JARS" kafka.Kafka "$PROPS"
