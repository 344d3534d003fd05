"""payment's read models: `accounts` and `bills`, and from settlement `payments` (settlements and
overpayments), `reconciliation_exceptions` and `collection_failures`; written from payment's own
events in the transaction that appends them (service.py), and every read query on them.

Idempotent and order-tolerant: an account and a bill are inserted once (their ids follow from
what they identify), and a change of tiers only moves an account's tiers forward in time, so
applying an event again changes nothing; a settlement, overpayment, exception or failure is
inserted once (its id follows from the channel's transaction) and a bill's `paid_at` is set
once. The event streams stay the truth; these tables answer the person's and the operators'
questions and list the accounts a billing run visits.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.envelope import Envelope
from contracts.events.payment import BillIssued, ContributionAccountOpened, PaymentSettled
from contracts.upcasting import decode
from kernel.db import Connection, Executor
from services.payment import withholding_views
from services.payment.domain import Month, TiersChanged
from services.payment.reconciliation import ReconciliationRunRecorded, Taken
from services.payment.settlement import CollectionFailureRecorded, OverpaymentRecorded, ReconciliationExceptionRecorded


async def apply(conn: Connection, envelopes: Sequence[Envelope]) -> None:
    for envelope in envelopes:
        event = decode(envelope)
        await withholding_views.apply(conn, event, envelope)
        if isinstance(event, ContributionAccountOpened):
            await _account_opened(conn, event)
        elif isinstance(event, TiersChanged):
            await _tiers_changed(conn, event)
        elif isinstance(event, BillIssued):
            await _bill_issued(conn, event)
        elif isinstance(event, PaymentSettled):
            await _payment_settled(conn, event)
        elif isinstance(event, OverpaymentRecorded):
            await _overpayment_recorded(conn, event)
        elif isinstance(event, ReconciliationExceptionRecorded):
            await _exception_recorded(conn, event)
        elif isinstance(event, CollectionFailureRecorded):
            await _collection_failed(conn, event)
        elif isinstance(event, ReconciliationRunRecorded):
            await _reconciliation_run(conn, event)


async def _account_opened(conn: Connection, opened: ContributionAccountOpened) -> None:
    await conn.execute(
        "INSERT INTO accounts (account_id, insured_person_id, application_id, opened_at, first_period, "
        "pension_tier, medical_tier, tiers_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $5) ON CONFLICT DO NOTHING",
        opened.account_id,
        opened.insured_person_id,
        opened.application_id,
        opened.opened_at,
        str(Month.at(opened.opened_at)),
        opened.pension_tier,
        opened.medical_tier,
    )


async def _tiers_changed(conn: Connection, changed: TiersChanged) -> None:
    # 'YYYY-MM' text sorts as the months do.
    await conn.execute(
        "UPDATE accounts SET pension_tier = $2, medical_tier = $3, tiers_from = $4, tiers_changed_at = $5 "
        "WHERE account_id = $1 AND tiers_from <= $4 AND (tiers_changed_at IS NULL OR tiers_changed_at <= $5)",
        changed.account_id,
        changed.pension_tier,
        changed.medical_tier,
        changed.effective_from,
        changed.changed_at,
    )


async def _bill_issued(conn: Connection, bill: BillIssued) -> None:
    await conn.execute(
        "INSERT INTO bills (bill_id, account_id, insured_person_id, period, items, amount_fen, due_on, issued_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        bill.bill_id,
        bill.account_id,
        bill.insured_person_id,
        bill.period,
        [item.model_dump(mode="json") for item in bill.items],
        bill.amount_fen,
        bill.due_on,
        bill.issued_at,
    )


_PAYMENT = (
    "INSERT INTO payments (payment_id, kind, bill_id, account_id, insured_person_id, payer_id, payer_name_masked, "
    "channel, channel_txn_id, amount_fen, bank, paid_at, settling_payment_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING"
)


async def _payment_settled(conn: Connection, settled: PaymentSettled) -> None:
    await conn.execute(
        _PAYMENT, settled.payment_id, "settlement", settled.bill_id, settled.account_id, settled.insured_person_id,
        settled.payer_id, settled.payer_name_masked, settled.channel, settled.channel_txn_id, settled.amount_fen,
        settled.bank, settled.settled_at, None,
    )  # fmt: skip
    await conn.execute(
        "UPDATE bills SET paid_at = $2 WHERE bill_id = $1 AND paid_at IS NULL", settled.bill_id, settled.settled_at
    )


async def _overpayment_recorded(conn: Connection, over: OverpaymentRecorded) -> None:
    await conn.execute(
        _PAYMENT, over.payment_id, "overpayment", over.bill_id, over.account_id, over.insured_person_id,
        over.payer_id, over.payer_name_masked, over.channel, over.channel_txn_id, over.amount_fen, over.bank,
        over.paid_at, over.settling_payment_id,
    )  # fmt: skip


async def _exception_recorded(conn: Connection, exc: ReconciliationExceptionRecorded) -> None:
    await conn.execute(
        "INSERT INTO reconciliation_exceptions (exception_id, code, channel, channel_txn_id, out_trade_no, bill_id, "
        "expected_fen, amount_fen, paid_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT DO NOTHING",
        exc.exception_id, exc.code, exc.channel, exc.channel_txn_id, exc.out_trade_no, exc.bill_id,
        exc.expected_fen, exc.amount_fen, exc.paid_at, exc.recorded_at,
    )  # fmt: skip


async def _collection_failed(conn: Connection, failed: CollectionFailureRecorded) -> None:
    await conn.execute(
        "INSERT INTO collection_failures (failure_id, out_trade_no, bill_id, collection_request_id, channel_txn_id, "
        "amount_fen, bank, reason, bank_detail, failed_at, recorded_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
        failed.failure_id, failed.out_trade_no, failed.bill_id, failed.collection_request_id, failed.channel_txn_id,
        failed.amount_fen, failed.bank, failed.reason, failed.bank_detail, failed.failed_at, failed.recorded_at,
    )  # fmt: skip


async def _reconciliation_run(conn: Connection, run: ReconciliationRunRecorded) -> None:
    await conn.execute(
        "INSERT INTO reconciliation_runs (run_id, channel, statement_date, statement_file, statement_sha256, matched, "
        "matched_fen, ours_count, ours_fen, statement_count, statement_fen, difference_count, differences, ran_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
        run.run_id, run.channel, run.statement_date, run.statement_file, run.statement_sha256, run.matched,
        run.matched_fen,
        run.ours_count, run.ours_fen, run.statement_count, run.statement_fen, len(run.differences),
        [d.model_dump(mode="json") for d in run.differences], run.ran_at,
    )  # fmt: skip


async def taken_on(db: Executor, channel: str, start: datetime, end: datetime) -> list[Taken]:
    """Every payment taken on `channel` (settlements and overpayments: money received either way)
    paid in [start, end); the out_trade_no is the bill id, as the channels carry it."""
    rows = await db.fetch(
        "SELECT channel_txn_id, bill_id, amount_fen, paid_at FROM payments "
        "WHERE channel = $1 AND paid_at >= $2 AND paid_at < $3 ORDER BY paid_at, channel_txn_id",
        channel,
        start,
        end,
    )
    return [Taken(r["channel_txn_id"], str(r["bill_id"]), r["amount_fen"], r["paid_at"]) for r in rows]


async def refunds(db: Executor, limit: int, offset: int) -> list[asyncpg.Record]:
    """Overpayments owed back, oldest first."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM payments WHERE kind = 'overpayment' ORDER BY paid_at, payment_id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return rows


async def reconciliation_exceptions(db: Executor, limit: int, offset: int) -> list[asyncpg.Record]:
    """Notifications that could not settle, oldest first."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM reconciliation_exceptions ORDER BY recorded_at, exception_id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return rows


async def account_of(db: Executor, insured_person_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT * FROM accounts WHERE insured_person_id = $1", insured_person_id
    )
    return row


async def bills_of(db: Executor, insured_person_id: UUID) -> list[asyncpg.Record]:
    """The person's bills, oldest month first."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT * FROM bills WHERE insured_person_id = $1 ORDER BY period, bill_id", insured_person_id
    )
    return rows


async def accounts_to_bill(db: Executor, last: Month, after: UUID | None, limit: int) -> list[UUID]:
    """Accounts opened in `last` or before, in id order after `after` (a run resumes from where
    it stopped: each account is billed in a transaction of its own)."""
    rows = await db.fetch(
        "SELECT account_id FROM accounts WHERE first_period <= $1 AND ($2::uuid IS NULL OR account_id > $2) "
        "ORDER BY account_id LIMIT $3",
        str(last),
        after,
        limit,
    )
    return [row["account_id"] for row in rows]
