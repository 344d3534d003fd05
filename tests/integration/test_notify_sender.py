"""The SMS sender on the real database with scripted gateways: retries, refusals, doubt after a
timeout, concurrent senders. (The Kafka path is in test_notify_flow.py.)"""

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from contracts.envelope import Envelope
from contracts.events.review import ReviewDecided, ReviewReason
from kernel.clock import utc_now
from kernel.db import migrate, migrations_from
from kernel.effects import SendResult
from kernel.eventstore import EventStore
from kernel.runtime import StoreOnly
from services.notify.domain import sms_id_for
from services.notify.gateway import LocalSinkGateway
from services.notify.projections import sms_one
from services.notify.sender import Sender
from services.notify.service import NotifyService
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
    return NotifySettings(schema_name=schema, notify_retry_backoff_seconds=0, **overrides)


def notify_service(
    schema: str, templates: Templates = TEMPLATES, clock: Callable[[], datetime] = utc_now
) -> NotifyService:
    return NotifyService(StoreOnly(EventStore("notify", schema)), templates, clock=clock)


async def record_decision(
    pool: asyncpg.Pool, schema: str, templates: Templates = TEMPLATES, *, rejected: bool = False
) -> UUID:
    """What the consumer does on UserRegistered (its phone opened: that is test_notify_flow.py's
    subject) and ReviewDecided; returns the sms_id."""
    user_id, case_id = uuid4(), uuid4()
    now = datetime.now(UTC)
    decided = ReviewDecided(
        case_id=case_id, application_id=uuid4(), applicant_id=user_id, attempt=1,
        decision="rejected" if rejected else "approved",
        reasons=[ReviewReason(code="documents_unreadable", text="照片模糊")] if rejected else [],
        reviewer_id=uuid4(), decided_at=now,
    )  # fmt: skip
    service = notify_service(schema, templates)
    envelope = Envelope.wrap(decided, stream_id=str(case_id), stream_version=2, producer="review", correlation_id="c")
    async with pool.acquire() as conn, conn.transaction():
        await service.remember_recipient(conn, user_id, f"+86139{uuid4().int % 10**8:08d}")
        await service.text_decision(conn, envelope.event_id, decided, envelope.correlation_id)
    return sms_id_for(envelope.event_id)


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
    return Sender(pool, notify_service(schema), gateway, settings(schema, **overrides))


async def test_a_timeout_after_the_provider_took_the_message_is_resolved_by_lookup(
    notify_pool: asyncpg.Pool, schema: str
) -> None:
    sms_id = await record_decision(notify_pool, schema)
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
    sms_id = await record_decision(notify_pool, schema)
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), ["timeout"])
    s = sender(notify_pool, schema, gateway)
    await s.run_once()
    await s.run_once()
    assert (await state_of(notify_pool, sms_id))["state"] == "sent"
    assert gateway.sends == 2 and gateway.lookups == 1
    assert await sink_rows(notify_pool, sms_id) == 1


async def test_when_the_provider_cannot_say_nothing_is_sent(notify_pool: asyncpg.Pool, schema: str) -> None:
    sms_id = await record_decision(notify_pool, schema)
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
    sms_id = await record_decision(notify_pool, schema, rejected=True)
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
    sms_id = await record_decision(notify_pool, schema)
    limited = "isv.BUSINESS_LIMIT_CONTROL"
    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), [limited, limited, limited])
    s = sender(notify_pool, schema, gateway, notify_max_send_attempts=2)
    await s.run_once()
    assert (await state_of(notify_pool, sms_id))["state"] == "pending"
    await s.run_once()
    await s.run_once()
    row = await state_of(notify_pool, sms_id)
    assert (row["state"], row["attempts"], gateway.sends, gateway.lookups) == ("failed", 2, 2, 0)
    assert [kind for kind, _ in await events(notify_pool, sms_id)] == ["SmsFailed"]


async def test_concurrent_senders_text_each_message_once(notify_pool: asyncpg.Pool, schema: str) -> None:
    ids = [await record_decision(notify_pool, schema) for _ in range(30)]
    sink = LocalSinkGateway(notify_pool, TEMPLATES)
    senders = [sender(notify_pool, schema, Scripted(sink, []), notify_sender_batch=4) for _ in range(4)]
    for _ in range(10):
        await asyncio.gather(*(s.run_once() for s in senders))
    per_out_id = await notify_pool.fetch("SELECT out_id, count(*) AS n FROM sms_sink GROUP BY out_id")
    assert {r["out_id"] for r in per_out_id} == {str(i) for i in ids}
    assert {r["n"] for r in per_out_id} == {1}
    assert await notify_pool.fetchval("SELECT count(*) FROM events WHERE event_type = 'SmsSent'") == 30


# --- replay guard -----------------------------------------------------------------------------


async def test_the_sweep_skips_a_message_whose_decision_grew_stale_while_waiting(
    notify_pool: asyncpg.Pool, schema: str
) -> None:
    """The sender's sweep releases waiting messages too (when the phone arrived in a transaction
    that did not see the message): stale at the sweep's `now` -> skipped_stale, never sent."""
    now = datetime.now(UTC)
    service = notify_service(schema, clock=lambda: now)
    waiting: dict[str, UUID] = {}
    for name, decided_at in (("late", now - timedelta(seconds=1)), ("in_time", now)):
        user_id, case_id = uuid4(), uuid4()
        decided = ReviewDecided(
            case_id=case_id, application_id=uuid4(), applicant_id=user_id, attempt=1, decision="approved",
            reasons=[], reviewer_id=uuid4(), decided_at=decided_at,
        )  # fmt: skip
        envelope = Envelope.wrap(
            decided, stream_id=str(case_id), stream_version=2, producer="review", correlation_id="c"
        )
        async with notify_pool.acquire() as conn, conn.transaction():
            await service.text_decision(conn, envelope.event_id, decided, envelope.correlation_id)
        await notify_pool.execute(
            "INSERT INTO recipients (user_id, phone) VALUES ($1, $2)", user_id, f"+86139{uuid4().int % 10**8:08d}"
        )
        waiting[name] = sms_id_for(envelope.event_id)
    for sms_id in waiting.values():
        assert (await state_of(notify_pool, sms_id))["state"] == "awaiting_recipient"

    gateway = Scripted(LocalSinkGateway(notify_pool, TEMPLATES), [])
    # 72 h after `now`: "in_time" is exactly at the limit (still texted), "late" one second past it
    later = notify_service(schema, clock=lambda: now + timedelta(hours=72))
    at_limit = Sender(notify_pool, later, gateway, settings(schema))
    await at_limit.run_once()
    late, in_time = await state_of(notify_pool, waiting["late"]), await state_of(notify_pool, waiting["in_time"])
    assert (late["state"], late["attempts"]) == ("skipped_stale", 0)
    assert late["last_error"].startswith("stale_decision: decision older than 72 h when the phone became known")
    assert in_time["state"] == "sent"
    assert gateway.sends == 1 and await sink_rows(notify_pool, waiting["late"]) == 0
    assert await events(notify_pool, waiting["late"]) == []


async def test_migration_002_replaces_the_unnamed_checks(notify_pool: asyncpg.Pool) -> None:
    names = await notify_pool.fetch(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'sms_messages'::regclass AND contype = 'c'"
    )
    assert {r["conname"] for r in names} == {"sms_messages_state_known", "sms_messages_phone_when_sendable"}
    insert = (
        "INSERT INTO sms_messages (sms_id, cause_event_id, recipient_id, phone, template, params, text, "
        "correlation_id, state) VALUES ($1, $1, $1, $2, 't', '{}', 't', 'c', $3)"
    )
    await notify_pool.execute(insert, uuid4(), None, "skipped_stale")  # skipped before the phone was known
    with pytest.raises(asyncpg.CheckViolationError):
        await notify_pool.execute(insert, uuid4(), None, "pending")
    with pytest.raises(asyncpg.CheckViolationError):
        await notify_pool.execute(insert, uuid4(), "+8613800138000", "bogus")


async def test_upgrade_from_001_keeps_rows_and_old_waiting_rows_age_from_created_at(
    pool: asyncpg.Pool, schema: str
) -> None:
    """A schema made by 001 with rows in it (the live upgrade): 002 finds 001's generated
    constraint names; a message recorded before 002 has no decided_at, its created_at counts."""
    first, second, *_ = migrations_from("services.notify")
    assert first.name.endswith("001_sms.sql") and second.name.endswith("002_skipped_stale.sql")
    await migrate(pool, schema, [first])
    user_id, sms_id = uuid4(), uuid4()
    await pool.execute(
        "INSERT INTO sms_messages (sms_id, cause_event_id, recipient_id, template, params, text, correlation_id, "
        "state, created_at) VALUES ($1, $1, $2, 'review_approved', '{}', 't', 'c', 'awaiting_recipient', $3)",
        sms_id,
        user_id,
        datetime.now(UTC) - timedelta(days=4),
    )
    assert await migrate(pool, schema, [first, second]) == [second.name]
    await migrate(pool, schema, migrations_from("services.notify"))  # and the later ones, as a start does
    async with pool.acquire() as conn, conn.transaction():
        await notify_service(schema).remember_recipient(conn, user_id, "+8613900000001")
    row = await state_of(pool, sms_id)
    assert row["state"] == "skipped_stale" and "phone became known" in row["last_error"]


async def test_upgrade_to_003_keeps_the_provider_id_under_the_standard_column(pool: asyncpg.Pool, schema: str) -> None:
    """kernel.effects' standard column is provider_ref: 003 renames 001's provider_message_id, with
    its values, and the SMS log still shows it as provider_message_id."""
    migrations = migrations_from("services.notify")
    assert migrations[2].name.endswith("003_effect_columns.sql")
    await migrate(pool, schema, migrations[:2])
    sms_id = uuid4()
    await pool.execute(
        "INSERT INTO sms_messages (sms_id, cause_event_id, recipient_id, phone, template, params, text, "
        "correlation_id, state, provider, provider_message_id) VALUES ($1, $1, $1, '+8613900000001', "
        "'review_approved', '{}', 't', 'c', 'sent', 'aliyun', 'biz-42')",
        sms_id,
    )
    assert await migrate(pool, schema, migrations[:3]) == [migrations[2].name]
    assert await pool.fetchval("SELECT provider_ref FROM sms_messages WHERE sms_id = $1", sms_id) == "biz-42"
    await migrate(pool, schema, migrations)  # the log's query reads the later migrations' columns too
    shown = await sms_one(pool, sms_id)
    assert shown is not None and shown["provider_message_id"] == "biz-42" and shown["phone_masked"] == "+86139****0001"
