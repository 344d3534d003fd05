"""notify's read models and every read query on them.

The recipients read model: user_id -> phone, opened from identity's sealed `UserRegistered`
(docs/personal-data.md). Order-tolerant: a message recorded before its recipient's phone waits in
`awaiting_recipient` and is released here (or by the sender's sweep, whichever sees both first).

Erasure (`PersonErased`): the recipient goes, their messages keep no phone, an unsent one fails
(`recipient_erased`), the local sink keeps their number only masked, and the person is remembered
as erased so that nothing brings the phone back.

Replay guard on release: a message whose decision is older than the limit by the time the phone
becomes known is not texted days late; it becomes `skipped_stale` instead of `pending`.

For operators: the SMS log and the local sink (phones leave here masked)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from contracts.events.base import mask_phone
from kernel.db import Connection, Executor
from kernel.logging import get_logger
from services.notify import domain
from services.notify.domain import UNFINISHED
from services.notify.metrics import SMS_SKIPPED

log = get_logger(__name__)

# Rows recorded before migration 002 have no decided_at: their created_at (when notify first saw
# the decision, a little later) stands in for it.
# What a row reports (`_CAUSE`, domain.Cause): the prefix of its subject (a reminder or a collection
# failure, migration 006), else a settlement (payment_id set), else a decision. Its note is taken from
# $3, a JSON object cause -> note.
_CAUSE = """
CASE WHEN m.subject IS NOT NULL THEN split_part(m.subject, ':', 1)
     WHEN m.payment_id IS NOT NULL THEN 'settlement' ELSE 'decision' END
"""
_RELEASE = f"""
UPDATE sms_messages m
SET state = CASE WHEN coalesce(m.decided_at, m.created_at) < $2::timestamptz THEN 'skipped_stale' ELSE 'pending' END,
    last_error = CASE WHEN coalesce(m.decided_at, m.created_at) < $2::timestamptz
                      THEN $3::jsonb ->> ({_CAUSE})
                      ELSE m.last_error END,
    phone = r.phone, next_attempt_at = now(), updated_at = now()
FROM recipients r
WHERE m.state = 'awaiting_recipient' AND r.user_id = m.recipient_id AND ($1::uuid IS NULL OR r.user_id = $1)
RETURNING m.sms_id, m.case_id, m.payment_id, m.subject, m.state, coalesce(m.decided_at, m.created_at) AS decided_at,
          {_CAUSE} AS cause
"""


async def remember_recipient(
    conn: Connection,
    user_id: UUID,
    phone: str,
    now: datetime,
    max_age: timedelta = domain.DEFAULT_MAX_DECISION_AGE,
) -> None:
    # One UserRegistered per account; a replay brings the same number again. An erased person's
    # (a v1 event in clear, replayed after the erasure) is not kept.
    await conn.execute(
        "INSERT INTO recipients (user_id, phone) SELECT $1, $2 "
        "WHERE NOT EXISTS (SELECT 1 FROM erased_recipients WHERE user_id = $1) ON CONFLICT (user_id) DO NOTHING",
        user_id,
        phone,
    )
    await release_awaiting(conn, now, max_age, user_id)


async def change_recipient(conn: Connection, user_id: UUID, phone: str) -> int:
    """PhoneChanged: the person's new phone, for every message not yet handed to a provider too
    (an erased person's is not kept). Returns how many waiting messages now go to the new phone."""
    await conn.execute(
        "INSERT INTO recipients (user_id, phone) SELECT $1, $2 "
        "WHERE NOT EXISTS (SELECT 1 FROM erased_recipients WHERE user_id = $1) "
        "ON CONFLICT (user_id) DO UPDATE SET phone = EXCLUDED.phone",
        user_id,
        phone,
    )
    moved = await conn.execute(
        "UPDATE sms_messages SET phone = $2 WHERE recipient_id = $1 AND phone IS NOT NULL AND state = 'pending'",
        user_id,
        phone,
    )
    return int(moved.split()[-1])


async def erased_at(conn: Executor, user_id: UUID) -> datetime | None:
    """When the person was erased, or None."""
    found: datetime | None = await conn.fetchval("SELECT erased_at FROM erased_recipients WHERE user_id = $1", user_id)
    return found


# A message not yet sent (waiting, due, or claimed right now: its outcome then no longer matches
# the row and is dropped, kernel.effects) cannot be sent without the phone: it fails, with why.
_FAIL_UNSENT = """
UPDATE sms_messages SET state = 'failed', failed_at = $2, last_error = $4, phone = NULL, recipient_erased_at = $2,
    updated_at = now()
WHERE recipient_id = $1 AND state = ANY($3::text[])
"""
_CLEAR_PHONES = """
UPDATE sms_messages SET phone = NULL, recipient_erased_at = $2, updated_at = now() WHERE recipient_id = $1
"""
# The sink is the local "provider": its record of what it received stays, with the number masked
# as everywhere else (contracts.events.base.mask_phone).
# The one-time codes texted to the person's phone (out_id `otc-…`: no sms_messages row) too.
_MASK_SINK = """
UPDATE sms_sink SET phone = left(phone, length(phone) - 8) || '****' || right(phone, 4)
WHERE (out_id IN (SELECT sms_id::text FROM sms_messages WHERE recipient_id = $1)
       OR phone = (SELECT phone FROM recipients WHERE user_id = $1))
  AND phone !~ '[*]'
"""


async def forget_recipient(conn: Connection, user_id: UUID, now: datetime) -> int:
    """Erase the person's phone everywhere in notify; returns how many unsent messages failed."""
    await conn.execute(
        "INSERT INTO erased_recipients (user_id, erased_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
        user_id,
        now,
    )
    await conn.execute(_MASK_SINK, user_id)  # before the recipient's phone is deleted: it finds their codes
    await conn.execute("DELETE FROM recipients WHERE user_id = $1", user_id)
    failed = await conn.execute(_FAIL_UNSENT, user_id, now, list(UNFINISHED), domain.ERASED_NOTE)
    await conn.execute(_CLEAR_PHONES, user_id, now)
    return int(failed.split()[-1])


async def phone_of(conn: Executor, user_id: UUID) -> str | None:
    phone: str | None = await conn.fetchval("SELECT phone FROM recipients WHERE user_id = $1", user_id)
    return phone


async def release_awaiting(
    conn: Executor,
    now: datetime,
    max_age: timedelta = domain.DEFAULT_MAX_DECISION_AGE,
    user_id: UUID | None = None,
) -> int:
    """Messages whose recipient's phone is now known become sendable, or `skipped_stale` when
    their decision is older than `max_age` at `now`. Returns how many became sendable."""
    notes = {cause: domain.stale_note(max_age, "recipient_known", cause) for cause in domain.CAUSES}
    rows = await conn.fetch(_RELEASE, user_id, domain.stale_before(now, max_age), notes)
    for row in rows:
        if row["state"] == "skipped_stale":
            SMS_SKIPPED.labels(f"stale_{row['cause']}").inc()
            log.info(
                "sms_skipped_stale",
                sms_id=str(row["sms_id"]),
                case_id=str(row["case_id"]),
                payment_id=str(row["payment_id"]),
                subject=row["subject"],
                decided_at=row["decided_at"].isoformat(),
                age_hours=round((now - row["decided_at"]) / timedelta(hours=1), 1),
                max_age_hours=max_age / timedelta(hours=1),
                when="recipient_known",
            )
    return sum(1 for row in rows if row["state"] == "pending")


# --- bills and the settlements waiting for them ---------------------------------------------


async def remember_bill(conn: Executor, bill_id: UUID, period: str) -> None:
    """A bill's month (BillIssued); a bill is issued once, a replay brings the same month."""
    await conn.execute(
        "INSERT INTO bills (bill_id, period) VALUES ($1, $2) ON CONFLICT (bill_id) DO NOTHING", bill_id, period
    )


async def period_of(conn: Executor, bill_id: UUID) -> str | None:
    period: str | None = await conn.fetchval("SELECT period FROM bills WHERE bill_id = $1", bill_id)
    return period


async def await_bill(
    conn: Executor,
    payment_id: UUID,
    bill_id: UUID,
    cause_event_id: UUID,
    settlement: dict[str, Any],
    correlation_id: str,
) -> None:
    """Keep a settlement whose bill is not known yet; one row per settlement (re-publication too)."""
    await conn.execute(
        "INSERT INTO receipts_awaiting_bill (payment_id, bill_id, cause_event_id, settlement, correlation_id) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING",
        payment_id,
        bill_id,
        cause_event_id,
        settlement,
        correlation_id,
    )


@dataclass(frozen=True)
class WaitingReceipt:
    cause_event_id: UUID
    settlement: dict[str, Any]
    correlation_id: str
    period: str


async def receipts_with_bill_waiting(db: Executor) -> bool:
    """Whether any waiting settlement's bill is known (the sweep's question, asked outside a
    transaction: almost always no, and then the sweep costs one round trip instead of three)."""
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM receipts_awaiting_bill w JOIN bills b ON b.bill_id = w.bill_id)"
        )
    )


async def take_receipts_with_bill(conn: Connection, bill_id: UUID | None = None) -> list[WaitingReceipt]:
    """Waiting settlements whose bill is now known (all, or one bill's), removed from the waiting
    table in the caller's transaction: whoever takes a row records its receipt."""
    rows = await conn.fetch(
        "DELETE FROM receipts_awaiting_bill w USING bills b "
        "WHERE b.bill_id = w.bill_id AND ($1::uuid IS NULL OR w.bill_id = $1) "
        "RETURNING w.cause_event_id, w.settlement, w.correlation_id, b.period",
        bill_id,
    )
    return [WaitingReceipt(r["cause_event_id"], r["settlement"], r["correlation_id"], r["period"]) for r in rows]


# --- the SMS log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsFilter:
    recipient_id: UUID | None = None
    state: str | None = None
    case_id: UUID | None = None
    payment_id: UUID | None = None
    bill_id: UUID | None = None


_SMS_COLUMNS = """
sms_id, recipient_id, application_id, case_id, payment_id, bill_id, subject, cause_event_id, phone, template, text,
state, attempts,
provider, provider_ref AS provider_message_id, last_error, created_at, updated_at, sent_at, failed_at,
CASE WHEN state = 'pending' THEN next_attempt_at END AS next_attempt_at
"""
_SMS_WHERE = (
    "($1::uuid IS NULL OR recipient_id = $1) AND ($2::text IS NULL OR state = $2) "
    "AND ($3::uuid IS NULL OR case_id = $3) AND ($4::uuid IS NULL OR payment_id = $4) "
    "AND ($5::uuid IS NULL OR bill_id = $5)"
)


def _masked(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    phone = item.pop("phone")
    item["phone_masked"] = mask_phone(phone) if phone else None
    return item


async def sms_page(pool: asyncpg.Pool, where: SmsFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    args = (where.recipient_id, where.state, where.case_id, where.payment_id, where.bill_id)
    rows = await pool.fetch(
        f"SELECT {_SMS_COLUMNS} FROM sms_messages WHERE {_SMS_WHERE} "
        "ORDER BY created_at DESC, sms_id LIMIT $6 OFFSET $7",
        *args,
        limit,
        offset,
    )
    total = await pool.fetchval(f"SELECT count(*) FROM sms_messages WHERE {_SMS_WHERE}", *args)
    return [_masked(r) for r in rows], int(total)


async def sms_one(pool: asyncpg.Pool, sms_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"SELECT {_SMS_COLUMNS} FROM sms_messages WHERE sms_id = $1", sms_id)
    return None if row is None else _masked(row)


async def sink_page(
    pool: asyncpg.Pool, out_id: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    rows = await pool.fetch(
        "SELECT id, out_id, phone, template, text, received_at FROM sms_sink "
        "WHERE $1::text IS NULL OR out_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        out_id,
        limit,
        offset,
    )
    total = await pool.fetchval("SELECT count(*) FROM sms_sink WHERE $1::text IS NULL OR out_id = $1", out_id)
    return [_masked(r) for r in rows], int(total)


async def unfinished_counts(pool: asyncpg.Pool) -> dict[str, int]:
    """Messages not yet sent nor given up, per state (the `flexenroll_sms_pending` gauge)."""
    rows = await pool.fetch(
        "SELECT state, count(*) AS n FROM sms_messages WHERE state = ANY($1::text[]) GROUP BY state", list(UNFINISHED)
    )
    found = {r["state"]: int(r["n"]) for r in rows}
    return {state: found.get(state, 0) for state in UNFINISHED}
