"""Create the Kafka topics of docs/downstream.md ("Topics") and who may use them, idempotently.

Run with `.venv/bin/python deploy/local/topics.py`. For every service: `<svc>.events` and
`<svc>.dlq`, both kept forever (`retention.ms=-1`: event topics are the replay source, and a
dead letter must not expire before someone has looked at it). Topics that already exist are
left alone, whatever their settings. Then, as the broker's admin, every principal with its
shipped development secret and the ACLs of ops/broker_access.py (docs/downstream.md: "Credentials").

Env: FLEXENROLL_STACK (the stack file, default deploy/local/stack.env: the broker is its KAFKA_PORT),
KAFKA_BOOTSTRAP (wins over the stack), KAFKA_PARTITIONS (3), KAFKA_REPLICATION_FACTOR (1),
KAFKA_ADMIN_USERNAME / KAFKA_ADMIN_PASSWORD (admin, the shipped development secret).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from confluent_kafka import KafkaException

# Run as a file, so make the repo root importable even without the editable install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from contracts.topics import DLQ_TOPICS, EVENT_TOPICS
from kernel.kafka import KafkaAccess
from ops.broker_access import PRINCIPALS, BrokerAdminSettings, provision
from ops.stack import use_stack

CONNECT_TIMEOUT_S = 60.0
TOPIC_CONFIG = {"retention.ms": "-1"}


async def ensure_topics(access: KafkaAccess, partitions: int, replication: int) -> None:
    admin = AIOKafkaAdminClient(**access.options(), client_id="flexenroll-topics")
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in (*EVENT_TOPICS, *DLQ_TOPICS) if t not in existing]
        if present := sorted(existing & {*EVENT_TOPICS, *DLQ_TOPICS}):
            print(f"topics: {len(present)} exist already, left alone")
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(t, partitions, replication, topic_configs=TOPIC_CONFIG) for t in missing]
        )
        # Errors come back per topic in the response, not as exceptions.
        for topic, code, *_ in response.topic_errors:
            error = for_code(code)
            if code == 0:
                print(f"topics: {topic} created, {partitions} partitions, kept forever")
            elif error is TopicAlreadyExistsError:  # someone else was faster
                print(f"topics: {topic} exists, left alone")
            else:
                raise error(f"creating {topic}")
    finally:
        await admin.close()


async def main() -> int:
    use_stack()
    settings = BrokerAdminSettings()
    access = settings.access()
    partitions = int(os.environ.get("KAFKA_PARTITIONS", "3"))
    replication = int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1"))
    # A broker whose port just opened may still refuse metadata or controller requests.
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            await ensure_topics(access, partitions, replication)
            bindings = provision(access)
            print(f"topics: {len(PRINCIPALS)} principals and {len(bindings)} ACLs in place")
            return 0
        except (KafkaError, KafkaException, TimeoutError) as exc:
            if time.monotonic() > deadline:
                print(f"topics: giving up on {access.bootstrap}: {exc!r}", file=sys.stderr)
                return 1
            await asyncio.sleep(1)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
