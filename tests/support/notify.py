"""Shared helpers for notify's tests: a review decision as review publishes it; an overdue bill and
a failed withholding collection as payment publishes them; notify started in-process (`Notify`),
the Kafka helpers and the event and table look-ups of its integration tests."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.envelope import Envelope
from contracts.events.payment import BillOverdue, WithholdingCollectionFailed, WithholdingFailureReason
from contracts.events.review import ReviewDecided, ReviewReason
from kernel.auth import Principal
from kernel.personal import PersonKeys
from kernel.runtime import ServiceRuntime
from ops.kafka_ops import partitions_of
from services.notify.settings import NotifySettings
from tests.support.identity import RunningIdentity
from tests.support.infra import KAFKA_ADMIN
from tests.support.tokens import bearer


def decision(outcome: str, *reasons: str) -> ReviewDecided:
    return ReviewDecided(
        case_id=uuid4(),
        application_id=uuid4(),
        applicant_id=uuid4(),
        attempt=1,
        decision=outcome,
        reasons=[ReviewReason(code=f"r{i}", text=text) for i, text in enumerate(reasons)],
        reviewer_id=uuid4(),
        decided_at=datetime(2025, 3, 3, 2, tzinfo=UTC),
    )


def bill_overdue(
    insured: UUID | None = None,
    amount_fen: int = 170000,
    period: str = "2025-03",
    due_on: date = date(2025, 4, 15),
    overdue_at: datetime | None = None,
    bill_id: UUID | None = None,
) -> BillOverdue:
    return BillOverdue(
        bill_id=bill_id or uuid4(),
        account_id=uuid4(),
        insured_person_id=insured or uuid4(),
        period=period,
        amount_fen=amount_fen,
        due_on=due_on,
        overdue_at=overdue_at or datetime(2025, 4, 16, 1, tzinfo=UTC),
    )


def collection_failed(
    insured: UUID | None = None,
    amount_fen: int = 170000,
    reason: WithholdingFailureReason = "insufficient_funds",
    bank: str = "工商银行",
    period: str = "2025-03",
    failed_at: datetime | None = None,
    bill_id: UUID | None = None,
) -> WithholdingCollectionFailed:
    """One failed collection request (a new collection_request_id each call) of `bill_id`."""
    return WithholdingCollectionFailed(
        collection_request_id=uuid4(),
        bill_id=bill_id or uuid4(),
        account_id=uuid4(),
        insured_person_id=insured or uuid4(),
        period=period,
        amount_fen=amount_fen,
        bank=bank,
        reason=reason,
        failed_at=failed_at or datetime(2025, 4, 5, 2, tzinfo=UTC),
    )


def from_payment(event: BillOverdue | WithholdingCollectionFailed, correlation_id: str = "pay-1") -> Envelope:
    """The envelope payment publishes for `event` (producer "payment"), keyed by its bill's stream."""
    return Envelope.wrap(
        event,
        stream_id=f"bill-{event.bill_id}",
        stream_version=2,
        producer="payment",
        correlation_id=correlation_id,
    )


@dataclass
class Notify:
    settings: NotifySettings
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    identity: RunningIdentity
    keys: PersonKeys

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    def token(self, role: str) -> dict[str, str]:
        return bearer(Principal(uuid4(), role), 600)  # type: ignore[arg-type]


# --- Kafka helpers --------------------------------------------------------------------------


async def end_offsets(topics: list[str], group: str | None = None) -> dict[TopicPartition, int]:
    """The topics' current ends; with a group, also committed as that group's start, so that a
    fresh test group skips the shared topics' history (other tests' decisions)."""
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await partitions_of(KAFKA_ADMIN, topics, wait_seconds=5)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        if group is not None:
            consumer.assign(parts)
            await consumer.commit(ends)
        return ends
    finally:
        await consumer.stop()


async def notify_events(
    since: dict[TopicPartition, int], sms_ids: set[UUID], pool: asyncpg.Pool, quiet: float = 1.5
) -> list[dict[str, Any]]:
    """Envelopes about `sms_ids` published on notify.events after `since` by the notify under test
    (its event store holds them: a notify started by `make up` also reads the shared review.events
    and publishes its own SmsSent for the same sms_id): read until none has come for `quiet`
    seconds (at least one each), so that a duplicate would be seen too."""
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), enable_auto_commit=False)
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        loop = asyncio.get_running_loop()
        deadline, last_news = loop.time() + 30, loop.time()
        while loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    body = json.loads(r.value)
                    if UUID(body["data"]["sms_id"]) in sms_ids and await pool.fetchval(
                        "SELECT count(*) FROM events WHERE event_id = $1", UUID(body["event_id"])
                    ):
                        found.append(body)
                        last_news = loop.time()
            seen = {UUID(b["data"]["sms_id"]) for b in found}
            if seen == sms_ids and loop.time() - last_news > quiet:
                break
        return found
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def person(identity: RunningIdentity) -> tuple[UUID, str]:
    """Someone registered at identity (their key is real): user_id and phone."""
    registered_person = await identity.register()
    return registered_person.user_id, registered_person.phone


async def registered(identity: RunningIdentity, user_id: UUID) -> Envelope:
    """The UserRegistered identity stored for the person (phone sealed under their key), as published."""
    [envelope] = [e for e in await stream_of(identity, user_id) if e.event_type == "UserRegistered"]
    return envelope


async def stream_of(identity: RunningIdentity, user_id: UUID) -> list[Envelope]:
    return list(await identity.runtime.store.load(identity.runtime.pool, f"user-{user_id}"))


async def publish(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:
    await producer.send_and_wait(topic, envelope.to_json(), key=envelope.kafka_key(), headers=envelope.kafka_headers())


async def sink(pool: asyncpg.Pool, sms_id: UUID) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT * FROM sms_sink WHERE out_id = $1", str(sms_id)))


async def state(pool: asyncpg.Pool, sms_id: UUID) -> str | None:
    found: str | None = await pool.fetchval("SELECT state FROM sms_messages WHERE sms_id = $1", sms_id)
    return found


async def handled(pool: asyncpg.Pool, *envelopes: Envelope) -> bool:
    count = await pool.fetchval(
        "SELECT count(*) FROM processed_events WHERE event_id = ANY($1::uuid[])", [e.event_id for e in envelopes]
    )
    return bool(count == len(envelopes))


async def own_events(pool: asyncpg.Pool, sms_id: UUID) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"sms-{sms_id}"))


async def erased(identity: RunningIdentity, user_id: UUID) -> Envelope:
    """`flexctl person erase`'s work at identity; returns the PersonErased it appended (to publish)."""
    await identity.erase(user_id)
    [envelope] = [e for e in await stream_of(identity, user_id) if e.event_type == "PersonErased"]
    return envelope
