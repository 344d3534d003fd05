"""The status projection on the real database: the other services' facts through the kernel's
idempotent consumer and enrollment's `status` handlers, enrollment's own events as the service
layer records them; a shuffled journey, in batches, with redeliveries, ends in the same view as
the ordered one."""

import random
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.events import topic_of
from kernel.consumer import IdempotentConsumer
from kernel.db import migrate, migrations_from
from kernel.runtime import Subscription
from services.enrollment import projections
from services.enrollment.status import fold
from tests.support.apps import enrollment_handlers
from tests.support.infra import service_pool, topic
from tests.support.journey import journey


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
    pool = await service_pool("enrollment", schema, 1, 4)
    await migrate(pool, schema, migrations_from("services.enrollment"))
    yield pool
    await pool.close()


def status_subscription(schema: str) -> Subscription:
    subscriptions = enrollment_handlers(schema, Path(tempfile.gettempdir())).subscriptions()
    return next(s for s in subscriptions if s.purpose == "status")


def record(envelope: Envelope, offset: int) -> FakeRecord:
    return FakeRecord(topic(topic_of(envelope.event_type)), 0, offset, envelope.kafka_key(), envelope.to_json(), [])


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_shuffled_journey_with_redeliveries_gives_the_ordered_view(
    enrollment_pool: asyncpg.Pool, schema: str, seed: int
) -> None:
    j, other = journey(), journey()
    ordered = fold(j.application_id, j.envelopes)
    rng = random.Random(seed)
    deliveries = j.envelopes + other.envelopes + rng.sample(j.envelopes, 8)
    rng.shuffle(deliveries)
    status = status_subscription(schema)
    consumer = IdempotentConsumer(
        name="status-test", pool=enrollment_pool, producer=cast(Any, None), dlq_topic="x", handlers=status.handlers
    )
    for start in range(0, len(deliveries), 7):
        chunk = deliveries[start : start + 7]
        async with enrollment_pool.acquire() as conn:  # the service layer, as it appends
            await projections.record_facts(conn, [e for e in chunk if e.producer == "enrollment"])
        # review's originals too: the status handlers must leave them (no handler for them)
        await consumer.handle_batch([record(e, start + i) for i, e in enumerate(chunk) if e.producer != "enrollment"])
    stored = await projections.facts_of(enrollment_pool, j.application_id)
    # each fact once; review's originals are not stored (enrollment's copies stand for them)
    assert len(stored) == len({e.event_id for e in j.envelopes if e.producer != "review"})
    assert not {e.event_type for e in stored} & {"ReviewCaseOpened", "ReviewDecided"}
    assert fold(j.application_id, stored) == ordered
    assert ordered is not None and ordered.status == "active"
    assert sorted(status.topics) == ["identity.events", "notify.events", "payment.events"]
    assert await projections.applications_of(enrollment_pool, j.applicant_id) == [j.application_id]
