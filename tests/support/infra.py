"""Where the real PostgreSQL and Kafka of the tests are, and small helpers around them.

The environment wins (DATABASE_URL, KAFKA_BOOTSTRAP); otherwise the servers that `make up`
(or `.ci/run`) started locally are used. Integration tests never fake either of them.
"""

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Sequence
from urllib.parse import urlparse

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ops.kafka_ops import partitions_of

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://flexenroll@127.0.0.1:55432/flexenroll")
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092")
# Each test session uses physical topics of its own ("test.<session>.identity.events", …), so
# that neither a system started by `make up` on the same broker nor another test session reacts
# to its events, and it sees none of theirs. They are deleted when the session ends.
TOPIC_PREFIX = os.environ.get("TEST_TOPIC_PREFIX") or f"test.{uuid.uuid4().hex[:8]}."


def topic(name: str) -> str:
    """The test topic of a contract topic name."""
    return f"{TOPIC_PREFIX}{name}"


def reachable(url_or_hostport: str) -> bool:
    parsed = urlparse(url_or_hostport if "//" in url_or_hostport else f"tcp://{url_or_hostport}")
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_topics(names: Sequence[str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        for name in names:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def delete_topics(names: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # already gone, or the broker is shutting down
            await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def read_topic(topic: str, expect: int, timeout: float = 30.0) -> list[object]:
    """Read a topic from the beginning until `expect` records arrived (or time runs out)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=KAFKA_BOOTSTRAP, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = await partitions_of(KAFKA_BOOTSTRAP, [topic], wait_seconds=5)
        assert parts, f"topic {topic} does not exist"
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        records: list[object] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def topic_size(topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA_BOOTSTRAP)
    await consumer.start()
    try:
        parts = await partitions_of(KAFKA_BOOTSTRAP, [topic], wait_seconds=5)
        assert parts, f"topic {topic} does not exist"
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        return sum(ends[p] - starts[p] for p in parts)
    finally:
        await consumer.stop()


async def drop_schemas(*schemas: str) -> None:
    from kernel.db import drop_schema

    for schema in schemas:
        await drop_schema(DATABASE_URL, schema)
