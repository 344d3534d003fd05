"""The SMS sender on the real database with scripted gateways: retries, refusals, doubt after a
timeout, concurrent senders. (The Kafka path is in test_notify_flow.py.)"""

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.events.identity import UserRegistered
from contracts.events.review import ReviewDecided, ReviewReason
from kernel.db import migrate, migrations_from
from kernel.eventstore import EventStore
from services.notify.domain import SendResult, sms_id_for
from services.notify.gateway import LocalSinkGateway
from services.notify.handlers import NotifyHandlers
from services.notify.sender import Sender
from services.notify.settings import NotifySettings
from services.notify.templates import Templates, load_templates

TEMPLATES = load_templates(None, "常州人社")


class Scripted:
    """A gateway that answers from a script, then behaves like the local sink."""

    name = "scripted"

    def __init__(self, sink: LocalSinkGateway, script: list[str]) -> None:
        self.sink = sink
        self.script = script
        self.sends = 0
        self.lookups = 0

    async def send(self, phone: str, template: str, params: Mapping[str, str], out_id: str) -> SendResult:
        self.sends += 1
        step = self.script.pop(0) if self.script else "ok"
        if step == "deliver_then_timeout":  # the provider got it, but the answer never came back
            await self.sink.send(phone, template, params, out_id)
            raise TimeoutError
        if step == "timeout":
            raise TimeoutError
        if step.startswith("isv."):
            return SendResult.refused(step, retryable=step == "isv.BUSINESS_LIMIT_CONTROL")
        return await self.sink.send(phone, template, params, out_id)

    async def lookup(self, phone: str, out_id: str, sent_on: date) -> SendResult | None:
        self.lookups += 1
        if self.script and self.script[0] == "lookup_fails":
            self.script.pop(0)
            raise OSError("provider unreachable")
        return await self.sink.lookup(phone, out_id, sent_on)


@pytest.fixture
async def notify_pool(pool: asyncpg.Pool, schema: str) -> asyncpg.Pool:
    await migrate(pool, schema, migrations_from("services.notify"))
    return pool


def settings(schema: str, **overrides: Any) -> NotifySettings:
    return NotifySettings(schema_name=schema, retry_backoff_seconds=0, **overrides)


async def record_decision(pool: asyncpg.Pool, templates: Templates = TEMPLATES, *, rejected: bool = False) -> UUID:
    """What the consumer does on UserRegistered and ReviewDecided; returns the sms_id."""
    user_id, case_id = uuid4(), uuid4()
    now = datetime.now(UTC)
    registered = UserRegistered(user_id=user_id, phone=f"+86139{uuid4().int % 10**8:08d}", role="applicant",
                                registered_at=now)  # fmt: skip
    decided = ReviewDecided(
        case_id=case_id, application_id=uuid4(), applicant_id=user_id, attempt=1,
        decision="rejected" if rejected else "approved",
        reasons=[ReviewReason(code="documents_unreadable", text="照片模糊")] if rejected else [],
        reviewer_id=uuid4(), decided_at=now,
    )  # fmt: skip
    handlers = NotifyHandlers(templates)
    envelopes = [
        Envelope.wrap(
            registered, stream_id=f"user-{user_id}", stream_version=1, producer="identity", correlation_id="c"
        ),
        Envelope.wrap(decided, stream_id=str(case_id), stream_version=2, producer="review", correlation_id="c"),
    ]
    async with pool.acquire() as conn, conn.transaction():
        await handlers.on_user_registered(conn, envelopes[0])
        await handlers.on_review_decided(conn, envelopes[1])
    return sms_id_for(envelopes[1].event_id)


async def state_of(pool: asyncpg.Pool, sms_id: UUID) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT state, attempts, uncertain, last_error FROM sms_messages WHERE sms_id = $1", sms_id
    )
    assert row is not None
    return row


async def sink_rows(pool: asyncpg.Pool, sms_id: UUID) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM sms_sink WHERE out_id = $1", str(sms_id)))


async def events(pool: asyncpg.Pool, sms_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch("SELECT event_type, data FROM events WHERE stream_id = $1", f"sms-{sms_id}")
    return [(r["event_type"], r["data"]) for r in rows]


def sender(pool: asyncpg.Pool, schema: str, gateway: Scripted, **overrides: Any) -> Sender:
    return Sender(pool, EventStore("notify", schema), gateway, settings(schema, **overrides))


async def test_a_timeout_after_the_provider_took_the_message_is_resolved_by_lookup(
    notify_pool: asyncpg.Pool, schema: str
) -> None:
    sms_id = await record_decision(notify_pool)
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), ["deliver_then_timeout"])
    s = sender(notify_pool, schema, gateway)

    await s.run_once()
    doubt = await state_of(notify_pool, sms_id)
    assert (doubt["state"], doubt["uncertain"], doubt["last_error"]) == ("pending", True, "timeout")

    await s.run_once()
    assert (await state_of(notify_pool, sms_id))["state"] == "sent"
    assert gateway.sends == 1 and gateway.lookups == 1
    assert await sink_rows(notify_pool, sms_id) == 1
    [(kind, data)] = await events(notify_pool, sms_id)
    assert kind == "SmsSent" and data["provider"] == "scripted" and data["provider_message_id"].startswith("local-")


async def test_a_timeout_before_the_provider_took_it_is_sent_after_lookup(
    notify_pool: asyncpg.Pool, schema: str
) -> None:
    sms_id = await record_decision(notify_pool)
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), ["timeout"])
    s = sender(notify_pool, schema, gateway)
    await s.run_once()
    await s.run_once()
    assert (await state_of(notify_pool, sms_id))["state"] == "sent"
    assert gateway.sends == 2 and gateway.lookups == 1
    assert await sink_rows(notify_pool, sms_id) == 1


async def test_when_the_provider_cannot_say_nothing_is_sent(notify_pool: asyncpg.Pool, schema: str) -> None:
    sms_id = await record_decision(notify_pool)
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), ["timeout", "lookup_fails"])
    s = sender(notify_pool, schema, gateway)
    await s.run_once()
    await s.run_once()
    row = await state_of(notify_pool, sms_id)
    assert (row["state"], row["uncertain"], gateway.sends) == ("pending", True, 1)
    await s.run_once()
    assert (await state_of(notify_pool, sms_id))["state"] == "sent"
    assert await sink_rows(notify_pool, sms_id) == 1


async def test_a_permanent_refusal_fails_with_sms_failed(notify_pool: asyncpg.Pool, schema: str) -> None:
    sms_id = await record_decision(notify_pool, rejected=True)
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), ["isv.MOBILE_NUMBER_ILLEGAL"])
    await sender(notify_pool, schema, gateway).run_once()
    row = await state_of(notify_pool, sms_id)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    [(kind, data)] = await events(notify_pool, sms_id)
    assert kind == "SmsFailed" and data["error_code"] == "isv.MOBILE_NUMBER_ILLEGAL"
    assert data["template"] == "review_rejected" and "****" in data["phone_masked"]


async def test_retryable_refusals_stop_after_max_attempts_without_lookups(
    notify_pool: asyncpg.Pool, schema: str
) -> None:
    sms_id = await record_decision(notify_pool)
    limited = "isv.BUSINESS_LIMIT_CONTROL"
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), [limited, limited, limited])
    s = sender(notify_pool, schema, gateway, max_send_attempts=2)
    await s.run_once()
    assert (await state_of(notify_pool, sms_id))["state"] == "pending"
    await s.run_once()
    await s.run_once()
    row = await state_of(notify_pool, sms_id)
    assert (row["state"], row["attempts"], gateway.sends, gateway.lookups) == ("failed", 2, 2, 0)
    assert [kind for kind, _ in await events(notify_pool, sms_id)] == ["SmsFailed"]


async def test_concurrent_senders_text_each_message_once(notify_pool: asyncpg.Pool, schema: str) -> None:
    ids = [await record_decision(notify_pool) for _ in range(30)]
    sink = LocalSinkGateway(notify_pool, TEMPLATES)
    senders = [sender(notify_pool, schema, Scripted(sink, []), sender_batch=4) for _ in range(4)]
    for _ in range(10):
        await asyncio.gather(*(s.run_once() for s in senders))
    per_out_id = await notify_pool.fetch("SELECT out_id, count(*) AS n FROM sms_sink GROUP BY out_id")
    assert {r["out_id"] for r in per_out_id} == {str(i) for i in ids}
    assert {r["n"] for r in per_out_id} == {1}
    assert await notify_pool.fetchval("SELECT count(*) FROM events WHERE event_type = 'SmsSent'") == 30
