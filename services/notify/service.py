"""notify's service layer: the SMS intents and their life, one transaction per step.

A review decision, a payment settlement (its bill's month known: else it waits in
`receipts_awaiting_bill` until BillIssued, or the sender's sweep, brings it), an overdue bill or a
failed withholding collection
-> recorded (consumer's transaction) -> awaiting_recipient | pending | skipped_stale (final: too old)
-> sending   (claimed and COMMITTED before the provider is called: kernel.effects)
-> sent + SmsSent | failed + SmsFailed (one transaction) | pending again (retry later)
A `sending` row whose lease ran out belongs to a dead sender: it is claimed again as uncertain.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg

from contracts.events.payment import BillIssued, BillOverdue, PaymentSettled, WithholdingCollectionFailed
from contracts.events.review import ReviewDecided
from kernel.clock import utc_now
from kernel.db import Connection, Executor
from kernel.effects import Claim, EffectTable, Next
from kernel.logging import get_logger
from kernel.runtime import ServiceLayer, Storage
from services.notify import domain, projections
from services.notify.domain import OutgoingSms, SmsIntent
from services.notify.metrics import SMS_SKIPPED
from services.notify.templates import Templates

log = get_logger(__name__)

_INSERT = """
INSERT INTO sms_messages (sms_id, cause_event_id, case_id, application_id, recipient_id, phone,
                          template, params, text, correlation_id, state, decided_at, last_error,
                          recipient_erased_at, failed_at, payment_id, subject, bill_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT DO NOTHING
"""


def outgoing(row: asyncpg.Record) -> OutgoingSms:
    """A claimed `sms_messages` row as the message to send (a claimed row always has the phone)."""
    return OutgoingSms(
        sms_id=row["sms_id"],
        cause_event_id=row["cause_event_id"],
        case_id=row["case_id"],
        application_id=row["application_id"],
        recipient_id=row["recipient_id"],
        phone=row["phone"],
        template=row["template"],
        params=row["params"],
        correlation_id=row["correlation_id"],
    )


def sender_channel(schema: str) -> str:
    """The NOTIFY channel that wakes the sender (sender.py): one per schema, like the outbox's
    (kernel.eventstore), since notifications are database-wide and tests share one database."""
    return f"{schema}_sms"


# `sms_messages` carries kernel.effects' standard columns (migrations 001 and 003).
MESSAGES: EffectTable[OutgoingSms] = EffectTable("sms_messages", "sms_id", outgoing)


class NotifyService(ServiceLayer):
    """`max_decision_age` is the replay guard's limit; `clock` gives its `now` (tests move it)."""

    def __init__(
        self,
        storage: Storage,
        templates: Templates,
        max_decision_age: timedelta = domain.DEFAULT_MAX_DECISION_AGE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(storage)
        self.templates = templates
        self.max_decision_age = max_decision_age
        self.clock = clock

    async def text_decision(
        self, conn: Connection, cause_event_id: UUID, decided: ReviewDecided, correlation_id: str
    ) -> bool:
        """Record the decision's SMS intent (no provider call); False if it was already recorded."""
        intent = domain.intent_for_decision(cause_event_id, decided, self.templates)
        return await self.record_intent(conn, intent, correlation_id)

    async def text_settlement(
        self, conn: Connection, cause_event_id: UUID, settled: PaymentSettled, correlation_id: str
    ) -> bool:
        """Record the settlement's receipt (no provider call); False if it was already recorded or
        waits for its bill's month (BillIssued not seen yet: `receipts_awaiting_bill`)."""
        period = await projections.period_of(conn, settled.bill_id)
        if period is None:
            await projections.await_bill(
                conn,
                settled.payment_id,
                settled.bill_id,
                cause_event_id,
                settled.model_dump(mode="json"),
                correlation_id,
            )
            log.info("receipt_awaiting_bill", payment_id=str(settled.payment_id), bill_id=str(settled.bill_id))
            return False
        intent = domain.intent_for_settlement(cause_event_id, settled, period, self.templates)
        return await self.record_intent(conn, intent, correlation_id)

    async def text_overdue_bill(
        self, conn: Connection, cause_event_id: UUID, overdue: BillOverdue, correlation_id: str
    ) -> bool:
        """Record the reminder of an overdue bill (no provider call); False if this bill's reminder
        was already recorded (one per bill, whatever the event id)."""
        intent = domain.intent_for_overdue_bill(cause_event_id, overdue, self.templates)
        return await self.record_intent(conn, intent, correlation_id)

    async def text_failed_collection(
        self, conn: Connection, cause_event_id: UUID, failed: WithholdingCollectionFailed, correlation_id: str
    ) -> bool:
        """Record the message about a failed withholding collection (no provider call); False if
        this collection request's message was already recorded (one per request)."""
        intent = domain.intent_for_failed_collection(cause_event_id, failed, self.templates)
        return await self.record_intent(conn, intent, correlation_id)

    async def remember_bill(self, conn: Connection, bill: BillIssued) -> int:
        """A bill's month, and the receipts of settlements that waited for it; returns how many."""
        await projections.remember_bill(conn, bill.bill_id, bill.period)
        return await self._record_waiting_receipts(conn, bill.bill_id)

    async def release_receipts(self, pool: asyncpg.Pool) -> int:
        """The sender's sweep: a settlement and its bill handled at once on two partitions, in two
        transactions, may each miss the other; whichever sees both first records the receipt.
        A pair that meets just after the question is found by the next sweep."""
        if not await projections.receipts_with_bill_waiting(pool):
            return 0
        async with pool.acquire() as conn, conn.transaction():
            return await self._record_waiting_receipts(conn, None)

    async def _record_waiting_receipts(self, conn: Connection, bill_id: UUID | None) -> int:
        recorded = 0
        for waiting in await projections.take_receipts_with_bill(conn, bill_id):
            settled = PaymentSettled.model_validate(waiting.settlement)
            intent = domain.intent_for_settlement(waiting.cause_event_id, settled, waiting.period, self.templates)
            recorded += await self.record_intent(conn, intent, waiting.correlation_id)
        return recorded

    async def record_intent(self, conn: Connection, intent: SmsIntent, correlation_id: str) -> bool:
        """One intent per cause event and per case, settlement or subject (overdue bill, failed
        collection: unique keys); False if it was already recorded.

        A cause (decision, settlement, overdue bill, failed collection) older than the limit at `now`
        (first sight: a replay of old topics) is recorded as `skipped_stale` and never texted; its
        redelivery finds the row and changes nothing. A message to an erased person is recorded
        `failed` (`recipient_erased`): no phone to text."""
        now, max_age = self.clock(), self.max_decision_age
        phone = await projections.phone_of(conn, intent.recipient_id)
        erased = await projections.erased_at(conn, intent.recipient_id)
        stale = domain.is_stale(intent.decided_at, now, max_age)
        if erased is not None:
            state, note = "failed", domain.ERASED_NOTE
        elif stale:
            state, note = "skipped_stale", domain.stale_note(max_age, "first_seen", domain.cause_of(intent))
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
            erased,
            now if erased is not None else None,
            intent.payment_id,
            intent.subject.key if intent.subject else None,
            intent.bill_id,
        )
        recorded = status.endswith(" 1")
        if recorded and state == "pending":
            await self.wake_sender(conn)
        if recorded and erased is None and stale:
            SMS_SKIPPED.labels(f"stale_{domain.cause_of(intent)}").inc()
            log.info(
                "sms_skipped_stale",
                sms_id=str(intent.sms_id),
                case_id=str(intent.case_id),
                payment_id=str(intent.payment_id),
                subject=intent.subject.key if intent.subject else None,
                decided_at=intent.decided_at.isoformat(),
                age_hours=round((now - intent.decided_at) / timedelta(hours=1), 1),
                max_age_hours=max_age / timedelta(hours=1),
                when="first_seen",
            )
        return recorded

    async def wake_sender(self, conn: Connection) -> None:
        """Wake the sender when this transaction commits (PostgreSQL delivers NOTIFY on commit,
        never before, and once per transaction and channel): a message is due now."""
        await conn.execute("SELECT pg_notify($1, '')", sender_channel(self.store.schema))

    async def remember_recipient(self, conn: Connection, user_id: UUID, phone: str) -> None:
        """The recipient's phone, and the release of their waiting messages (replay guard applied)."""
        await projections.remember_recipient(conn, user_id, phone, self.clock(), self.max_decision_age)

    async def change_recipient(self, conn: Connection, user_id: UUID, phone: str) -> None:
        """PhoneChanged: text the new phone from now on (waiting messages too), then release any
        message that waited for a phone."""
        moved = await projections.change_recipient(conn, user_id, phone)
        if await projections.release_awaiting(conn, self.clock(), self.max_decision_age, user_id):
            await self.wake_sender(conn)
        log.info("recipient_phone_changed", recipient_id=str(user_id), pending_moved=moved)

    async def forget_recipient(self, conn: Connection, user_id: UUID) -> int:
        """`PersonErased`: the person's phone leaves notify (docs/personal-data.md); returns how
        many messages not yet sent failed with `recipient_erased`."""
        failed = await projections.forget_recipient(conn, user_id, utc_now())
        log.info("recipient_erased", recipient_id=str(user_id), unsent_failed=failed)
        return failed

    async def release_awaiting(self, conn: Executor) -> int:
        """The sender's sweep: waiting messages whose phone is known become sendable (or stale)."""
        return await projections.release_awaiting(conn, self.clock(), self.max_decision_age)

    async def record_final(
        self, conn: Connection, claim: Claim[OutgoingSms], outcome: Next, provider: str, now: datetime
    ) -> None:
        """kernel.effects' `OnFinal`: SmsSent or SmsFailed, in the transaction that records it."""
        sms = claim.effect
        state: Literal["sent", "failed"] = "sent" if outcome.state == "sent" else "failed"
        event = domain.final_event(sms, state, provider, now, outcome.reference, outcome.error_code)
        await self.store.append(
            conn,
            domain.stream_id(sms.sms_id),
            0,
            [event],
            correlation_id=sms.correlation_id,
            causation_id=str(sms.cause_event_id),
            now=now,
        )
