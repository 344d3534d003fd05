"""The relay reads the next batch while the last one's acknowledgements are awaited, and builds
each message's bytes from the stored row. Against the real database and broker: the bytes on the
topic are the stored envelope's, a failed batch's read-ahead is never sent before it, and a
transaction that commits late is still found."""

import json
from typing import Any
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from contracts.envelope import Envelope
from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay, new_producer
from tests.support.events import KernelPing
from tests.support.infra import KAFKA_ADMIN, create_topics, read_topic, unique_name

PUBLISHED = {("KernelPing", 1)}


class FailingOnce(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer whose `fail_at`-th send (1-based) fails as if the broker timed out."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(**KAFKA_ADMIN.options(), client_id="read-ahead-test", enable_idempotence=True, acks="all")
        self.fail_at = fail_at
        self.sends = 0

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        self.sends += 1
        if self.sends == self.fail_at:
            raise KafkaTimeoutError()
        return await super().send(*args, **kwargs)


async def _one_partition_topic() -> str:
    name = unique_name("test.readahead")
    await create_topics([name], partitions=1)  # the topic's order is the order of sending
    return name


def _odd(store: EventStore, n: int) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        event_type="KernelPing",
        schema_version=1,
        stream_id=f"stream-ü-{n % 3}",
        stream_version=n // 3 + 1,
        occurred_at="2025-03-02T09:00:00.000123+08:00",
        producer=store.producer,
        correlation_id=f"corr-中-{n}",
        causation_id=None if n % 2 else str(uuid4()),
        data={"n": n, "name": "张伟 ☕", "z": [1.5, None, {"b": True}], "a": '\x01"\\/\u2028'},
    )


async def _event_ids_in_position_order(pool: asyncpg.Pool) -> list[str]:
    return [str(r[0]) for r in await pool.fetch("SELECT event_id FROM events ORDER BY position")]


async def test_the_topic_holds_the_stored_envelopes_bytes(pool: asyncpg.Pool, store: EventStore) -> None:
    topic = await _one_partition_topic()
    async with pool.acquire() as conn:
        await store.append_envelopes(conn, [_odd(store, n) for n in range(9)], PUBLISHED)
    producer = new_producer(KAFKA_ADMIN, client_id="read-ahead-test")
    await producer.start()
    try:
        assert await OutboxRelay(pool, store, producer, topic, batch_max=2).drain() == 9
    finally:
        await producer.stop()
    stored = [e for s in range(3) for e in await store.load(pool, f"stream-ü-{s}")]
    expected = {(e.to_json(), e.kafka_key(), tuple(e.kafka_headers())) for e in stored}
    records = await read_topic(topic, expect=9)
    assert {(r.value, r.key, tuple(r.headers)) for r in records} == expected  # type: ignore[attr-defined]


async def test_a_failed_batch_goes_out_again_before_the_batch_read_behind_it(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    topic = await _one_partition_topic()
    async with pool.acquire() as conn:
        for s in range(4):  # streams spread over every batch
            await store.append(conn, f"s-{s}", 0, [KernelPing(n=n) for n in range(3)], correlation_id="c")
    producer = FailingOnce(fail_at=5)  # the first send of the second batch
    await producer.start()
    relay = OutboxRelay(pool, store, producer, topic, batch_max=4)
    try:
        assert await relay.publish_batch() == 4  # and the second batch was read meanwhile
        try:
            await relay.publish_batch()
            raise AssertionError("the second batch should have failed")
        except KafkaTimeoutError:
            pass
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 8  # nothing of it deleted
        assert await relay.drain() == 8
    finally:
        await producer.stop()
    records = await read_topic(topic, expect=12)
    sent = [json.loads(r.value)["event_id"] for r in records]  # type: ignore[attr-defined]
    assert sent == await _event_ids_in_position_order(pool)


async def test_a_late_commit_is_found_after_the_batch_read_ahead(pool: asyncpg.Pool, store: EventStore) -> None:
    topic = await _one_partition_topic()
    slow = await pool.acquire()
    tx = slow.transaction()
    await tx.start()
    [late] = await store.append(slow, "late", 0, [KernelPing(n=0)], correlation_id="c")  # the lowest position
    async with pool.acquire() as conn:
        await store.append(conn, "early", 0, [KernelPing(n=n) for n in range(8)], correlation_id="c")
    producer = new_producer(KAFKA_ADMIN, client_id="read-ahead-test")
    await producer.start()
    relay = OutboxRelay(pool, store, producer, topic, batch_max=4)
    try:
        assert await relay.publish_batch() == 4  # the next four were read meanwhile, without "late"
        await tx.commit()
        await pool.release(slow)
        assert await relay.drain() == 5  # the four read ahead, then "late" on a fresh read
    finally:
        await producer.stop()
    records = await read_topic(topic, expect=9)
    sent = [json.loads(r.value)["event_id"] for r in records]  # type: ignore[attr-defined]
    assert len(sent) == len(set(sent)) == 9 and sent[-1] == str(late.event_id)
