"""Read views for operators: the SMS log and the local sink (phones leave here masked)."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from contracts.events.base import mask_phone


@dataclass(frozen=True)
class SmsFilter:
    recipient_id: UUID | None = None
    state: str | None = None
    case_id: UUID | None = None


_SMS_COLUMNS = """
sms_id, recipient_id, application_id, case_id, cause_event_id, phone, template, text, state, attempts,
provider, provider_message_id, last_error, created_at, updated_at, sent_at, failed_at,
CASE WHEN state = 'pending' THEN next_attempt_at END AS next_attempt_at
"""
_SMS_WHERE = (
    "($1::uuid IS NULL OR recipient_id = $1) AND ($2::text IS NULL OR state = $2) "
    "AND ($3::uuid IS NULL OR case_id = $3)"
)


def _masked(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    phone = item.pop("phone")
    item["phone_masked"] = mask_phone(phone) if phone else None
    return item


async def sms_page(pool: asyncpg.Pool, where: SmsFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    args = (where.recipient_id, where.state, where.case_id)
    rows = await pool.fetch(
        f"SELECT {_SMS_COLUMNS} FROM sms_messages WHERE {_SMS_WHERE} "
        "ORDER BY created_at DESC, sms_id LIMIT $4 OFFSET $5",
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
