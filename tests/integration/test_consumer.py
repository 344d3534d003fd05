"""The idempotent consumer on a real FastStream subscriber, real broker, real database."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker

from contracts.envelope import Envelope
from kernel.consumer import IdempotentConsumer, subscribe
from kernel.db import Connection
from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay
from tests.support.events import KernelPing
from tests.support.infra import KAFKA_ADMIN, read_topic, unique_name


@pytest.fixture
async def effects(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute("CREATE TABLE effects (event_id uuid NOT NULL, n int NOT NULL)")
    return pool


async def record_effect(conn: Connection, envelope: Envelope) -> None:
    if envelope.data.get("n") == -1:
        raise ValueError("this message can never be handled")
    await conn.execute("INSERT INTO effects (event_id, n) VALUES ($1, $2)", envelope.event_id, envelope.data["n"])


async def run_consumer(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, group: str, until: Callable[[], Awaitable[bool]]
) -> None:
    broker = KafkaBroker(KAFKA_ADMIN.bootstrap, security=KAFKA_ADMIN.security(), logger=None)
    consumer = IdempotentConsumer(
        name=group, pool=pool, producer=producer, dlq_topic=topic + ".dlq", handlers={"KernelPing": record_effect}
    )
    subscribe(broker, consumer, [topic], batch_max=50, batch_wait_ms=20)
    await broker.start()
    try:
        for _ in range(300):
            if await until():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("consumer did not get there in 30 s")
    finally:
        await broker.stop()


async def publish(pool: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, topic: str, count: int) -> None:
    async with pool.acquire() as conn:
        for n in range(count):
            await store.append(
                conn,
                f"s-{n % 7}",
                await store.stream_version(conn, f"s-{n % 7}"),
                [KernelPing(n=n)],
                correlation_id="c",
            )
    await OutboxRelay(pool, store, producer, topic).drain()


async def committed(group: str, topic: str) -> int:
    probe = AIOKafkaConsumer(**KAFKA_ADMIN.options(), group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        return sum([(await probe.committed(tp)) or 0 for tp in parts])
    finally:
        await probe.stop()


async def rewind_group(group: str, topic: str) -> None:
    """A real redelivery: the group's committed offsets go back to the start of the topic."""
    rewinder = AIOKafkaConsumer(**KAFKA_ADMIN.options(), group_id=group, enable_auto_commit=False)
    await rewinder.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        rewinder.assign(parts)
        await rewinder.commit({tp: 0 for tp in parts})
    finally:
        await rewinder.stop()


async def test_redelivered_messages_change_nothing(
    effects: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, topic: str
) -> None:
    await publish(effects, store, producer, topic, 40)
    group = unique_name("g")

    async def all_handled() -> bool:
        return await effects.fetchval("SELECT count(*) FROM effects") == 40 and await committed(group, topic) == 40

    await run_consumer(effects, producer, topic, group, all_handled)
    # the same messages again: once via a rewound group, once re-sent by a relay that crashed
    await rewind_group(group, topic)
    first = (await read_topic(topic, expect=1))[0]
    await producer.send_and_wait(topic, first.value, key=first.key)  # type: ignore[attr-defined]

    async def redelivered() -> bool:
        return await committed(group, topic) == 41

    await run_consumer(effects, producer, topic, group, redelivered)
    assert await effects.fetchval("SELECT count(*) FROM effects") == 40
    assert await effects.fetchval("SELECT count(DISTINCT event_id) FROM effects") == 40
    assert await effects.fetchval("SELECT count(*) FROM processed_events WHERE consumer = $1", group) == 40


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_consumer_goes_on(
    effects: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, topic: str
) -> None:
    await producer.send_and_wait(topic, b"{not json", key=b"k")
    bad = Envelope(
        event_id=uuid4(), event_type="KernelPing", schema_version=1, stream_id="s-bad", stream_version=1,
        occurred_at="2026-01-01T00:00:00Z", producer="testsvc", correlation_id="c-bad", data={"n": -1},
    )  # fmt: skip
    await producer.send_and_wait(topic, bad.to_json(), key=b"s-bad", headers=bad.kafka_headers())
    await publish(effects, store, producer, topic, 5)  # good ones behind the poison
    group = unique_name("g")

    async def good_ones_handled() -> bool:
        return bool(await effects.fetchval("SELECT count(*) FROM effects") == 5)

    await run_consumer(effects, producer, topic, group, good_ones_handled)
    dead = await read_topic(topic + ".dlq", expect=2)
    assert len(dead) == 2
    by_value = {r.value: dict(r.headers) for r in dead}  # type: ignore[attr-defined]
    undecodable = by_value[b"{not json"]
    assert undecodable["dlq.original_topic"] == topic.encode()
    assert undecodable["dlq.consumer"] == group.encode()
    assert {"dlq.original_partition", "dlq.original_offset", "dlq.error"} <= set(undecodable)
    failing = by_value[bad.to_json()]
    assert b"can never be handled" in failing["dlq.error"]
    assert failing["correlation_id"] == b"c-bad"  # original headers are kept
    outcome = await effects.fetchval("SELECT outcome FROM processed_events WHERE event_id = $1", bad.event_id)
    assert outcome == "dead_lettered"
    assert json.loads(bad.to_json())["data"] == {"n": -1}
