"""payment's withholding read models (migration 004): agreements, collection requests (also
kernel.effects' table of requests to send) and bills recorded overdue; written by
projections.apply in the transaction that appends their events, and every read query on them.

Idempotent: an agreement and a request are inserted once (their ids follow from what they
identify); a result or an overdue time is set once.
"""

from datetime import date
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.payment import BillOverdue, PaymentSettled, WithholdingCollectionFailed
from kernel.db import Connection, Executor
from services.payment.withholding import (
    CollectionRequested,
    WithholdingAgreementSigned,
    WithholdingAgreementTerminated,
)


async def apply(conn: Connection, event: Event, envelope: Envelope) -> None:
    if isinstance(event, WithholdingAgreementSigned):
        await _signed(conn, event)
    elif isinstance(event, WithholdingAgreementTerminated):
        await conn.execute(
            "UPDATE withholding_agreements SET terminated_at = $2 WHERE agreement_id = $1 AND terminated_at IS NULL",
            event.agreement_id,
            event.terminated_at,
        )
    elif isinstance(event, CollectionRequested):
        await _requested(conn, event, envelope.correlation_id)
    elif isinstance(event, WithholdingCollectionFailed):
        await conn.execute(
            "UPDATE collection_requests SET result = 'failed', result_reason = $2, result_at = $3 "
            "WHERE collection_request_id = $1 AND result IS NULL",
            event.collection_request_id,
            event.reason,
            event.failed_at,
        )
    elif isinstance(event, PaymentSettled):
        # The bill is paid (by the bank's collection or any other channel): its open request is done.
        await conn.execute(
            "UPDATE collection_requests SET result = 'collected', result_at = $2 "
            "WHERE bill_id = $1 AND result IS NULL AND state <> 'failed'",
            event.bill_id,
            event.settled_at,
        )
    elif isinstance(event, BillOverdue):
        await conn.execute(
            "UPDATE bills SET overdue_at = $2 WHERE bill_id = $1 AND overdue_at IS NULL",
            event.bill_id,
            event.overdue_at,
        )


async def _signed(conn: Connection, signed: WithholdingAgreementSigned) -> None:
    # Signed again after it ended: the same row, active again.
    await conn.execute(
        "INSERT INTO withholding_agreements (agreement_id, insured_person_id, bank_code, bank, card_ref, card_last4, "
        "agreement_no, signed_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (agreement_id) DO UPDATE SET agreement_no = excluded.agreement_no, "
        "signed_at = excluded.signed_at, terminated_at = NULL WHERE withholding_agreements.terminated_at IS NOT NULL",
        signed.agreement_id, signed.insured_person_id, signed.bank_code, signed.bank, signed.card_ref,
        signed.card_last4, signed.agreement_no, signed.signed_at, signed.recorded_at,
    )  # fmt: skip


async def _requested(conn: Connection, asked: CollectionRequested, correlation_id: str) -> None:
    await conn.execute(
        "INSERT INTO collection_requests (collection_request_id, bill_id, account_id, insured_person_id, period, "
        "attempt, agreement_id, agreement_no, bank_code, amount_fen, run_id, requested_at, correlation_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
        asked.collection_request_id, asked.bill_id, asked.account_id, asked.insured_person_id, asked.period,
        asked.attempt, asked.agreement_id, asked.agreement_no, asked.bank_code, asked.amount_fen, asked.run_id,
        asked.requested_at, correlation_id,
    )  # fmt: skip


# --- reading -----------------------------------------------------------------------------------


async def agreements_of(db: Executor, insured_person_id: UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM withholding_agreements WHERE insured_person_id = $1 ORDER BY signed_at, agreement_id",
        insured_person_id,
    )
    return rows


async def bills_to_collect(db: Executor, after: UUID | None, limit: int) -> list[tuple[UUID, UUID]]:
    """(bill, agreement) for unpaid bills whose person has an active agreement (the one signed
    last), in bill id order after `after`, so a run resumes where it stopped."""
    rows = await db.fetch(
        "SELECT b.bill_id, a.agreement_id FROM bills b "
        "JOIN LATERAL (SELECT agreement_id FROM withholding_agreements w "
        "  WHERE w.insured_person_id = b.insured_person_id AND w.terminated_at IS NULL "
        "  ORDER BY w.signed_at DESC, w.agreement_id LIMIT 1) a ON true "
        "WHERE b.paid_at IS NULL AND ($1::uuid IS NULL OR b.bill_id > $1) ORDER BY b.bill_id LIMIT $2",
        after,
        limit,
    )
    return [(row["bill_id"], row["agreement_id"]) for row in rows]


async def bills_past_due(db: Executor, today: date, after: UUID | None, limit: int) -> list[UUID]:
    """Unpaid bills whose due day is before `today` and not yet recorded overdue."""
    rows = await db.fetch(
        "SELECT bill_id FROM bills WHERE paid_at IS NULL AND overdue_at IS NULL AND due_on < $1 "
        "AND ($2::uuid IS NULL OR bill_id > $2) ORDER BY bill_id LIMIT $3",
        today,
        after,
        limit,
    )
    return [row["bill_id"] for row in rows]


async def requests_of_run(db: Executor, run_id: UUID) -> dict[str, int]:
    """How the requests a run recorded stand: effect state -> count."""
    rows = await db.fetch(
        "SELECT state, count(*) AS n FROM collection_requests WHERE run_id = $1 GROUP BY state", run_id
    )
    return {row["state"]: row["n"] for row in rows}


async def open_requests(db: Executor) -> int:
    """Requests asked of a bank and not answered yet (a bill with one is not asked again)."""
    count: int = await db.fetchval(
        "SELECT count(*) FROM collection_requests WHERE result IS NULL AND state <> 'failed'"
    )
    return count


async def collections(db: Executor, insured_person_id: UUID | None, limit: int, offset: int) -> list[asyncpg.Record]:
    """Collection requests, newest first (one person's, or everyone's)."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM collection_requests WHERE ($1::uuid IS NULL OR insured_person_id = $1) "
        "ORDER BY requested_at DESC, collection_request_id LIMIT $2 OFFSET $3",
        insured_person_id,
        limit,
        offset,
    )
    return rows
