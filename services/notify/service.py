"""notify's service layer: the SMS intents and their life, one transaction per step.

recorded (consumer's transaction) -> awaiting_recipient | pending | skipped_stale (final: too old)
-> sending   (claimed and COMMITTED before the provider is called)
-> sent + SmsSent | failed + SmsFailed (one transaction) | pending again (retry later)
A `sending` row whose lease ran out belongs to a dead sender: it is claimed again as uncertain.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from contracts.events.base import Event, mask_phone
from contracts.events.notify import SmsFailed, SmsSent
from kernel.db import Connection
from kernel.eventstore import EventStore
from kernel.logging import get_logger
from services.notify import domain, projections
from services.notify.domain import UNFINISHED, Next, SmsIntent
from services.notify.metrics import SMS_SKIPPED

log = get_logger(__name__)

_INSERT = """
INSERT INTO sms_messages (sms_id, cause_event_id, case_id, application_id, recipient_id, phone,
                          template, params, text, correlation_id, state, decided_at, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT DO NOTHING
"""

# Due: pending and its time has come, or `sending` past the lease (its sender died).
# SKIP LOCKED lets several senders share the work; the UPDATE commits before any provider call.
_CLAIM = """
WITH due AS (
    SELECT sms_id FROM sms_messages
    WHERE (state = 'pending' AND next_attempt_at <= now())
       OR (state = 'sending' AND sending_since < now() - make_interval(secs => $2))
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE sms_messages m
SET uncertain = m.uncertain OR m.state = 'sending',
    state = 'sending', attempts = m.attempts + 1, sending_since = now(),
    first_attempt_at = coalesce(m.first_attempt_at, now()), last_attempt_at = now(), updated_at = now()
FROM due WHERE m.sms_id = due.sms_id
RETURNING m.sms_id, m.cause_event_id, m.case_id, m.application_id, m.recipient_id, m.phone, m.template,
          m.params, m.correlation_id, m.attempts, m.uncertain, m.first_attempt_at, m.last_attempt_at
"""

# Guarded by state and attempt number: a sender whose lease was taken over records nothing.
_FINISH = """
UPDATE sms_messages
SET state = $3, uncertain = $4, provider = $5,
    provider_message_id = coalesce($6, provider_message_id), last_error = coalesce($7, last_error),
    next_attempt_at = coalesce($8, next_attempt_at), sending_since = NULL,
    sent_at = CASE WHEN $3 = 'sent' THEN $9::timestamptz END,
    failed_at = CASE WHEN $3 = 'failed' THEN $9::timestamptz END,
    updated_at = $9
WHERE sms_id = $1 AND state = 'sending' AND attempts = $2
"""


def stream_id(sms_id: UUID) -> str:
    return f"sms-{sms_id}"


async def record_intent(
    conn: Connection,
    intent: SmsIntent,
    correlation_id: str,
    now: datetime,
    max_age: timedelta = domain.DEFAULT_MAX_DECISION_AGE,
) -> bool:
    """One intent per cause and per case (unique keys); False if it was already recorded.

    A decision older than `max_age` at `now` (first sight: a replay of old topics) is recorded as
    `skipped_stale` and never texted; its redelivery finds the row and changes nothing."""
    phone = await projections.phone_of(conn, intent.recipient_id)
    stale = domain.is_stale(intent.decided_at, now, max_age)
    if stale:
        state, note = "skipped_stale", domain.stale_note(max_age, "first_seen")
    else:
        state, note = ("pending" if phone else "awaiting_recipient"), None
    status = await conn.execute(
        _INSERT,
        intent.sms_id,
        intent.cause_event_id,
        intent.case_id,
        intent.application_id,
        intent.recipient_id,
        phone,
        intent.template,
        intent.params,
        intent.text,
        correlation_id,
        state,
        intent.decided_at,
        note,
    )
    recorded = status.endswith(" 1")
    if recorded and stale:
        SMS_SKIPPED.labels("stale_decision").inc()
        log.info(
            "sms_skipped_stale",
            sms_id=str(intent.sms_id),
            case_id=str(intent.case_id),
            decided_at=intent.decided_at.isoformat(),
            age_hours=round((now - intent.decided_at) / timedelta(hours=1), 1),
            max_age_hours=max_age / timedelta(hours=1),
            when="first_seen",
        )
    return recorded


@dataclass(frozen=True)
class Claimed:
    """A message a sender now holds in `sending`; `attempts` counts this attempt too."""

    sms_id: UUID
    cause_event_id: UUID
    case_id: UUID | None
    application_id: UUID | None
    recipient_id: UUID
    phone: str
    template: str
    params: dict[str, str]
    correlation_id: str
    attempts: int
    uncertain: bool
    first_attempt_at: datetime
    last_attempt_at: datetime

    @property
    def out_id(self) -> str:
        return str(self.sms_id)


async def claim_due(pool: asyncpg.Pool, limit: int, lease_seconds: float) -> list[Claimed]:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_CLAIM, limit, lease_seconds)
    return [Claimed(**dict(row)) for row in rows]


async def finish(
    pool: asyncpg.Pool, store: EventStore, sms: Claimed, outcome: Next, provider: str, now: datetime
) -> bool:
    """Record an attempt's outcome and, when final, its event, in one transaction.

    False when the message is no longer ours (lease expired and another sender took it)."""
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.execute(
            _FINISH,
            sms.sms_id,
            sms.attempts,
            outcome.state,
            outcome.uncertain,
            provider,
            outcome.message_id,
            outcome.error_code,
            outcome.retry_at,
            now,
        )
        if not status.endswith(" 1"):
            return False
        event = final_event(sms, outcome, provider, now)
        if event is not None:
            await store.append(
                conn,
                stream_id(sms.sms_id),
                0,
                [event],
                correlation_id=sms.correlation_id,
                causation_id=str(sms.cause_event_id),
                now=now,
            )
    return True


def final_event(sms: Claimed, outcome: Next, provider: str, now: datetime) -> Event | None:
    common: dict[str, Any] = {
        "sms_id": sms.sms_id,
        "recipient_id": sms.recipient_id,
        "phone_masked": mask_phone(sms.phone),
        "template": sms.template,
        "provider": provider,
        "causation_event_id": sms.cause_event_id,
        "application_id": sms.application_id,
        "case_id": sms.case_id,
    }
    if outcome.state == "sent":
        return SmsSent(**common, provider_message_id=outcome.message_id, sent_at=now)
    if outcome.state == "failed":
        return SmsFailed(**common, error_code=outcome.error_code or "unknown_error", failed_at=now)
    return None


async def unfinished_counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT state, count(*) AS n FROM sms_messages WHERE state = ANY($1::text[]) GROUP BY state", list(UNFINISHED)
    )
    found = {r["state"]: int(r["n"]) for r in rows}
    return {state: found.get(state, 0) for state in UNFINISHED}
