"""Outbox relay: drain N stored events to a fresh topic, one event per batch against 500.

Each variant gets its own topic; the outbox is filled before timing (in batches, which is
cheap) and a few events are drained first so that the producer already knows the topic.
The benchmark asserts that the topic received every event and the outbox is empty.
"""

from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.envelope import Envelope
from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay
from tests.bench.measure import Result, Work, run_variant
from tests.support.events import KernelPing
from tests.support.infra import KAFKA_ADMIN, create_topics, topic_size, unique_name

WARM_UP = 10
_PUBLISHED = {(KernelPing.event_type, KernelPing.schema_version)}


async def _fill(pool: asyncpg.Pool, store: EventStore, prefix: str, count: int) -> None:
    correlation_id = str(uuid4())
    async with pool.acquire() as conn:
        for start in range(0, count, 500):
            envelopes = [
                Envelope.wrap(
                    KernelPing(n=n),
                    stream_id=f"{prefix}-{n % 50}-{n}",
                    stream_version=1,
                    producer="bench",
                    correlation_id=correlation_id,
                )
                for n in range(start, min(count, start + 500))
            ]
            await store.append_envelopes(conn, envelopes, _PUBLISHED)


async def bench_relay(
    pool: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, *, single: int, batched: int
) -> list[Result]:
    results: list[Result] = []
    topics: list[str] = []
    try:
        for batch_max, count in ((1, single), (500, batched)):
            topics.append(unique_name(f"bench.relay{batch_max}"))
            results.append(await _variant(pool, store, producer, topics[-1], batch_max, count))
    finally:
        await _delete_topics(topics)
    return results


async def _variant(
    pool: asyncpg.Pool, store: EventStore, producer: AIOKafkaProducer, topic: str, batch_max: int, count: int
) -> Result:
    await create_topics([topic])
    relay = OutboxRelay(pool, store, producer, topic, batch_max=batch_max)
    await _fill(pool, store, f"warm{batch_max}", WARM_UP)
    assert await OutboxRelay(pool, store, producer, topic).drain() == WARM_UP
    await _fill(pool, store, f"r{batch_max}", count)

    async def drain(work: Work) -> None:
        drained = 0
        while True:
            with work.unit():
                sent = await relay.publish_batch()
            if not sent:
                work.latencies.pop()  # the final look at an empty outbox is not a batch
                work.transactions -= 1
                break
            drained += sent
        assert drained == count, (drained, count)

    result = await run_variant(f"batch_max={batch_max}", count, drain)
    assert await relay.backlog() == 0
    assert await topic_size(topic) == count + WARM_UP
    return result


async def _delete_topics(topics: list[str]) -> None:
    """The benchmark's topics are of no use afterwards: leave the broker as it was."""
    if not topics:
        return
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()
