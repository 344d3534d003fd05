"""The outbox relay against the real broker and database."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay, new_producer
from tests.support.events import KernelPing
from tests.support.infra import KAFKA_ADMIN, read_topic, topic_size

ROOT = Path(__file__).resolve().parents[2]


async def _producer() -> AIOKafkaProducer:
    producer = new_producer(KAFKA_ADMIN, client_id="test")
    await producer.start()
    return producer


async def test_relay_publishes_the_full_envelope_keyed_by_stream(
    pool: asyncpg.Pool, store: EventStore, topic: str
) -> None:
    async with pool.acquire() as conn:
        [envelope] = await store.append(conn, "user-42", 0, [KernelPing(n=7)], correlation_id="corr-1")
    producer = await _producer()
    try:
        assert await OutboxRelay(pool, store, producer, topic).drain() == 1
    finally:
        await producer.stop()
    [record] = await read_topic(topic, expect=1)
    assert record.key == b"user-42"  # type: ignore[attr-defined]
    body = json.loads(record.value)  # type: ignore[attr-defined]
    assert body["event_id"] == str(envelope.event_id)
    assert body["event_type"] == "KernelPing" and body["schema_version"] == 1
    assert body["stream_id"] == "user-42" and body["stream_version"] == 1
    assert body["producer"] == "testsvc" and body["correlation_id"] == "corr-1"
    assert body["occurred_at"].endswith("Z") and body["data"] == {"n": 7}
    assert dict(record.headers) == {"event_type": b"KernelPing", "correlation_id": b"corr-1"}  # type: ignore[attr-defined]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_transaction_that_commits_late_is_not_skipped(
    pool: asyncpg.Pool, store: EventStore, topic: str
) -> None:
    slow = await pool.acquire()
    tx = slow.transaction()
    await tx.start()
    [late] = await store.append(slow, "late", 0, [KernelPing(n=1)], correlation_id="c")
    async with pool.acquire() as conn:
        [early] = await store.append(conn, "early", 0, [KernelPing(n=2)], correlation_id="c")
    position_of = "SELECT position FROM events WHERE event_id = $1"
    # the trap: "late" took the lower position but commits after "early"
    assert await slow.fetchval(position_of, late.event_id) < await pool.fetchval(position_of, early.event_id)

    producer = await _producer()
    try:
        relay = OutboxRelay(pool, store, producer, topic)
        assert await relay.drain() == 1  # only "early" is visible yet
        await tx.commit()
        await pool.release(slow)
        assert await relay.drain() == 1  # "late" is found although a higher position went out first
    finally:
        await producer.stop()
    published = {json.loads(r.value)["event_id"] for r in await read_topic(topic, expect=2)}  # type: ignore[attr-defined]
    assert published == {str(late.event_id), str(early.event_id)}


async def test_relay_killed_mid_batch_loses_nothing_and_resends_same_event_ids(
    pool: asyncpg.Pool, store: EventStore, schema: str, topic: str
) -> None:
    total = 20_000
    async with pool.acquire() as conn:
        for start in range(0, total, 1000):
            events = [KernelPing(n=n) for n in range(start, start + 1000)]
            await store.append(conn, f"s-{start}", 0, events, correlation_id="c")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "tests.support.relay_process", schema, topic, "500"]
    relay = subprocess.Popen(args, cwd=ROOT, env=env)
    try:
        for _ in range(600):  # wait until it is part-way through
            if await topic_size(topic) > 0:
                break
            await asyncio.sleep(0.02)
        relay.send_signal(signal.SIGKILL)
        relay.wait(10)
        published_before = await topic_size(topic)
        left = await pool.fetchval("SELECT count(*) FROM outbox")
        assert 0 < published_before < total and left > 0, (published_before, left)

        relay = subprocess.Popen(args, cwd=ROOT, env=env)
        for _ in range(600):
            if await pool.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.05)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        relay.kill()
        relay.wait(10)

    size = await topic_size(topic)
    records = await read_topic(topic, expect=size, timeout=60)
    bodies = [json.loads(r.value) for r in records]  # type: ignore[attr-defined]
    stored = {str(e.event_id): e for s in range(0, total, 1000) for e in await store.load(pool, f"s-{s}")}
    assert {b["event_id"] for b in bodies} == set(stored)  # nothing lost
    for body in bodies:  # a re-sent event is the same event: same id, same content
        assert (
            body["data"] == stored[body["event_id"]].data
            and body["stream_version"] == stored[body["event_id"]].stream_version
        )
    duplicates = sum(c - 1 for c in Counter(b["event_id"] for b in bodies).values())
    assert len(bodies) == total + duplicates
    for stream in {b["stream_id"] for b in bodies}:  # per stream, first deliveries keep version order
        first_seen: list[int] = []
        for b in (b for b in bodies if b["stream_id"] == stream):
            if b["stream_version"] not in first_seen:
                first_seen.append(b["stream_version"])
        assert first_seen == sorted(first_seen)
