"""The status projection on the real database, through the kernel's idempotent consumer: a
shuffled journey, in batches, with redeliveries, ends in the same view as the ordered one."""

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.events import topic_of
from kernel.consumer import IdempotentConsumer
from kernel.db import create_pool, migrate, migrations_from
from services.enrollment import projections
from services.enrollment.handlers import STATUS_HANDLERS
from services.enrollment.status import fold
from tests.support.infra import DATABASE_URL, topic
from tests.unit.test_enrollment_status import journey


@dataclass
class FakeRecord:
    """What the consumer reads of a Kafka record (the broker is not the subject here)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@pytest.fixture
async def enrollment_pool(schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(DATABASE_URL, schema, 1, 4)
    await migrate(pool, schema, migrations_from("services.enrollment"))
    yield pool
    await pool.close()


def record(envelope: Envelope, offset: int) -> FakeRecord:
    return FakeRecord(topic(topic_of(envelope.event_type)), 0, offset, envelope.kafka_key(), envelope.to_json(), [])


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_shuffled_journey_with_redeliveries_gives_the_ordered_view(
    enrollment_pool: asyncpg.Pool, seed: int
) -> None:
    j, other = journey(), journey()
    ordered = fold(j.application_id, j.envelopes)
    rng = random.Random(seed)
    deliveries = j.envelopes + other.envelopes + rng.sample(j.envelopes, 8)
    rng.shuffle(deliveries)
    consumer = IdempotentConsumer(
        name="status-test", pool=enrollment_pool, producer=cast(Any, None), dlq_topic="x", handlers=STATUS_HANDLERS
    )
    for start in range(0, len(deliveries), 7):
        batch = [record(e, start + i) for i, e in enumerate(deliveries[start : start + 7])]
        await consumer.handle_batch(batch)
    stored = await projections.facts_of(enrollment_pool, j.application_id)
    assert len(stored) == len({e.event_id for e in j.envelopes})
    assert fold(j.application_id, stored) == ordered
    assert ordered is not None and ordered.status == "active"
    assert await projections.applications_of(enrollment_pool, j.applicant_id) == [j.application_id]
