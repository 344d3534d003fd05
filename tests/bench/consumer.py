"""Idempotent consumer: `handle_batch` with batches of 1 against 100 and 200, then redelivery.

Records are synthetic (no broker in the loop) but carry real Envelope JSON of KernelPing, as
the relay would have published them. The handler does one INSERT per event. A redelivery pass
feeds the same records again: it must change nothing, which the benchmark asserts.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from uuid import uuid4

import asyncpg

from contracts.envelope import Envelope
from kernel.consumer import IdempotentConsumer
from kernel.db import Connection
from tests.bench.measure import Result, Work, run_variant
from tests.support.events import KernelPing

TOPIC = "bench.pings"
PARTITIONS = 3


@dataclass
class SyntheticRecord:
    """What aiokafka's ConsumerRecord offers `handle_batch` (kernel.consumer.Record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


class NoDeadLetters:
    """Every record here is valid: dead-lettering one would be a bug, not a cost to measure."""

    async def send_and_wait(self, topic: str, **_: object) -> None:
        raise AssertionError(f"a benchmark record was dead-lettered to {topic}")


def records(prefix: str, count: int) -> list[SyntheticRecord]:
    correlation_id = str(uuid4())
    made = []
    for n in range(count):
        envelope = Envelope.wrap(
            KernelPing(n=n),
            stream_id=f"{prefix}-{n}",
            stream_version=1,
            producer="bench",
            correlation_id=correlation_id,
        )
        made.append(
            SyntheticRecord(
                topic=TOPIC,
                partition=n % PARTITIONS,
                offset=n // PARTITIONS,
                key=envelope.kafka_key(),
                value=envelope.to_json(),
                headers=tuple(envelope.kafka_headers()),
            )
        )
    return made


async def _effects(pool: asyncpg.Pool, consumer: str) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM effects WHERE consumer = $1) AS effects, "
        "(SELECT count(*) FROM processed_events WHERE consumer = $1) AS processed",
        consumer,
    )
    assert row is not None
    return int(row["effects"]), int(row["processed"])


async def bench_consumer(pool: asyncpg.Pool, *, single: int, batched: int) -> list[Result]:
    await pool.execute("CREATE TABLE IF NOT EXISTS effects (consumer text NOT NULL, event_id uuid NOT NULL, n int)")

    def consumer(name: str) -> IdempotentConsumer:
        async def record_effect(conn: Connection, envelope: Envelope) -> None:
            await conn.execute(
                "INSERT INTO effects (consumer, event_id, n) VALUES ($1, $2, $3)",
                name,
                envelope.event_id,
                envelope.data["n"],
            )

        return IdempotentConsumer(
            name=name,
            pool=pool,
            producer=NoDeadLetters(),
            dlq_topic=f"{TOPIC}.dlq",
            handlers={"KernelPing": record_effect},
        )

    def feed(c: IdempotentConsumer, recs: list[SyntheticRecord], size: int) -> Callable[[Work], Awaitable[None]]:
        async def body(work: Work) -> None:
            for start in range(0, len(recs), size):
                with work.unit():
                    await c.handle_batch(recs[start : start + size])

        return body

    await consumer("warm").handle_batch(records("warm", 20))

    results: list[Result] = []
    fresh: dict[int, tuple[IdempotentConsumer, list[SyntheticRecord]]] = {}
    for size, count in ((1, single), (100, batched), (200, batched)):
        c, recs = consumer(f"batch{size}"), records(f"b{size}", count)
        fresh[size] = (c, recs)
        results.append(await run_variant(f"batches of {size}", count, feed(c, recs, size)))
        assert await _effects(pool, c.name) == (count, count), "every fresh event has exactly one effect"

    for size in (1, 100):
        c, recs = fresh[size]
        before = await _effects(pool, c.name)
        results.append(await run_variant(f"redelivery, batches of {size}", len(recs), feed(c, recs, size)))
        assert await _effects(pool, c.name) == before, "a redelivery changed something"
    return results
