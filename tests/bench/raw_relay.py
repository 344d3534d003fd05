"""Outbox relay drain against a raw aiokafka producer sending the same bytes.

N stored events (realistic journeys, tests/bench/template.py) are drained by `OutboxRelay`
(batches of 500: lock outbox rows, publish with acks=all, delete, commit) to a fresh topic. The
baseline is a producer with the relay's own settings (`kernel.relay.new_producer`: idempotent,
acks=all, linger 2 ms, 256 KiB batches) sending the same keys, values and headers, ready-made,
in rounds of 500 awaited as the relay awaits a batch. Both topics must then hold N records.

The events are stored first and the baseline runs both before and after the relay, half of the
events each time, so that what follows storing 100,000 rows (WAL writing, autovacuum of the new
rows) and load from elsewhere on the machine fall on both alike: with the baseline run before the
store, the same code read from 37% to 77% in runs minutes apart.
"""

import asyncio
import time
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay
from tests.bench.cpu import Cpu, measured
from tests.bench.report import Comparison, Run
from tests.bench.template import JourneyTemplate
from tests.support.infra import create_topics, delete_topics, topic_size, unique_name

ROUND = 500


async def _store(pool: asyncpg.Pool, store: EventStore, envelopes: list[Envelope]) -> None:
    published = {(e.event_type, e.schema_version) for e in envelopes}
    async with pool.acquire() as conn:
        for start in range(0, len(envelopes), 1000):
            await store.append_envelopes(conn, envelopes[start : start + 1000], published)


async def _raw(producer: AIOKafkaProducer, topic: str, envelopes: list[Envelope]) -> Run:
    messages = [(e.to_json(), e.kafka_key(), e.kafka_headers()) for e in envelopes]
    with measured() as cpu:
        started = time.perf_counter()
        for start in range(0, len(messages), ROUND):
            futures = [
                await producer.send(topic, value=v, key=k, headers=h) for v, k, h in messages[start : start + ROUND]
            ]
            await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    return Run("aiokafka producer", len(messages), seconds, cpu)


async def _ours(pool: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, topic: str, count: int) -> Run:
    relay = OutboxRelay(pool, store, producer, topic, batch_max=ROUND)
    with measured() as cpu:
        started = time.perf_counter()
        drained = await relay.drain()
        seconds = time.perf_counter() - started
    assert drained == count, (drained, count)
    return Run("OutboxRelay.drain", count, seconds, cpu)


def _both(first: Run, second: Run) -> Run:
    cpu = Cpu(
        first.cpu.process + second.cpu.process,
        None if first.cpu.postgres is None or second.cpu.postgres is None else first.cpu.postgres + second.cpu.postgres,
        None if first.cpu.broker is None or second.cpu.broker is None else first.cpu.broker + second.cpu.broker,
    )
    return Run(first.label, first.events + second.events, first.seconds + second.seconds, cpu)


async def bench_raw_relay(pool: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, count: int) -> Comparison:
    envelopes = JourneyTemplate().envelopes(0, count)
    raw_topic, our_topic, warm = (unique_name(f"bench.{t}") for t in ("raw", "relay", "warm"))
    await create_topics([raw_topic, our_topic, warm])
    try:
        # the producer knows every topic, and the pool's connection is warm, before any clock
        await _raw(producer, warm, envelopes[:ROUND])
        await _ours(pool, store, producer, warm, 0)
        for topic in (raw_topic, our_topic):
            await producer.send_and_wait(topic, b"warm-up", key=str(uuid4()).encode())
        await _store(pool, store, envelopes)
        half = len(envelopes) // 2
        before = await _raw(producer, raw_topic, envelopes[:half])
        ours = await _ours(pool, store, producer, our_topic, count)
        raw = _both(before, await _raw(producer, raw_topic, envelopes[half:]))
        assert await topic_size(raw_topic) == await topic_size(our_topic) == count + 1
    finally:
        await delete_topics([raw_topic, our_topic, warm])
    return Comparison(f"relay drain of {count:,} events", ours, raw, target=0.5)
