"""payment's pure decisions on a verified channel notification (issue 8, "Channels"): settle the
bill, record an overpayment, or record a reconciliation exception; and the failed withholding
collection the bank reports. No I/O, no clock: `now` is an argument (docs/service-anatomy.md).

Streams, all in payment's own store:
- `bill-<bill_id>`: after `BillIssued`, the bill's `PaymentSettled` (public, once: the append's
  expected version orders two channels paying the same bill at once) and any
  `OverpaymentRecorded` (internal) for money that arrived after the bill was paid.
- `reconciliation-<exception_id>`: `ReconciliationExceptionRecorded` (internal), a notification
  that could not settle (wrong amount, unknown bill).
- `collection-<failure_id>`: `CollectionFailureRecorded` (internal), a bank's failed collection.

Ids follow from `(channel, transaction_id)` (uuid5), the key of exactly-once settlement, so the
same notification always names the same payment or exception. Money is integer fen throughout.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import Field, StrictInt

from contracts.envelope import Envelope
from contracts.events.base import Event, Fen, NonEmptyStr, UtcDatetime
from contracts.events.payment import BillIssued, BillOverdue, Channel, MaskedName, PaymentSettled
from kernel import aggregate
from services.payment.channels import ChannelNotification, CollectionFailed, WithholdingFailure
from services.payment.withholding import Collections

# Never change: payment, exception and failure ids derived from them are stored in events.
_PAYMENT_NAMESPACE = UUID("5d1e7c3a-92b4-4f0e-b6a8-1c3d5e7f9a02")
_EXCEPTION_NAMESPACE = UUID("8c4a2e6f-13d5-4b79-a0c2-e4f6a8b0c1d3")
_FAILURE_NAMESPACE = UUID("2f9b6d4e-7a1c-4e3b-9d5f-0a2c4e6b8d17")

PositiveFen = Annotated[StrictInt, Field(gt=0)]
ExceptionCode = Literal["amount_mismatch", "unknown_bill"]

EXCEPTION_DETAILS: dict[ExceptionCode, str] = {
    "amount_mismatch": "支付金额与账单应缴金额不符，已记录为对账异常，请联系经办机构核对。",
    "unknown_bill": "未找到该支付通知对应的账单，已记录为对账异常，请联系经办机构核对。",
}


def payment_id_for(channel: Channel, transaction_id: str) -> UUID:
    return uuid5(_PAYMENT_NAMESPACE, f"{channel}:{transaction_id}")


def exception_id_for(channel: Channel, transaction_id: str) -> UUID:
    return uuid5(_EXCEPTION_NAMESPACE, f"{channel}:{transaction_id}")


def failure_id_for(transaction_id: str) -> UUID:
    return uuid5(_FAILURE_NAMESPACE, f"bank_withholding:{transaction_id}")


def exception_stream(exception_id: UUID) -> str:
    return f"reconciliation-{exception_id}"


def collection_stream(failure_id: UUID) -> str:
    return f"collection-{failure_id}"


_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


def bill_id_of(out_trade_no: str) -> UUID | None:
    """The bill an order number names: a UUID, dashed or in WeChat Pay's 32-hex-digit form
    (services/payment/channels/README.md, "Amounts"); None when it is not one."""
    text = out_trade_no.strip()
    if not (_HEX32.fullmatch(text) or len(text) == 36):
        return None
    try:
        return UUID(text)
    except ValueError:
        return None


def mask_payer(payer: str) -> str:
    """The payer as the channel names them, with characters hidden (channels send no name: an
    openid, a buyer id, a card's last four digits)."""
    if len(payer) <= 4:
        return "****" + payer
    return payer[:3] + "****" + payer[-4:]


def _payer_name(notification: ChannelNotification) -> str | None:
    if notification.payer is None:
        return None
    # Alipay sends the buyer's login already masked (buyer_logon_id, e.g. 159****5620).
    logon = notification.raw.get("buyer_logon_id")
    if isinstance(logon, str) and "*" in logon and len(logon) >= 2:
        return logon
    return mask_payer(notification.payer)


# --- payment's own (internal) events -----------------------------------------------------------


class OverpaymentRecorded(Event):
    """Money for a bill already paid (by any channel): kept, never dropped, and owed back
    (the operators' refund list)."""

    public: ClassVar[bool] = False

    payment_id: UUID
    bill_id: UUID
    account_id: UUID
    insured_person_id: UUID
    payer_id: NonEmptyStr | None
    payer_name_masked: MaskedName | None
    channel: Channel
    channel_txn_id: NonEmptyStr
    amount_fen: PositiveFen
    bank: NonEmptyStr | None
    paid_at: UtcDatetime
    settling_payment_id: UUID = Field(description="The settlement that paid the bill first.")
    recorded_at: UtcDatetime


class ReconciliationExceptionRecorded(Event):
    """A genuine notification that could not settle: kept for the operators to reconcile."""

    public: ClassVar[bool] = False

    exception_id: UUID
    code: ExceptionCode
    channel: Channel
    channel_txn_id: NonEmptyStr
    out_trade_no: NonEmptyStr
    bill_id: UUID | None
    expected_fen: Fen | None
    amount_fen: PositiveFen
    paid_at: UtcDatetime
    recorded_at: UtcDatetime


class CollectionFailureRecorded(Event):
    """A bank could not collect a bill by withholding; the bill stays due."""

    public: ClassVar[bool] = False

    failure_id: UUID
    out_trade_no: NonEmptyStr
    bill_id: UUID | None
    collection_request_id: NonEmptyStr
    channel_txn_id: NonEmptyStr
    amount_fen: PositiveFen
    bank: NonEmptyStr
    reason: WithholdingFailure
    bank_detail: str | None
    failed_at: UtcDatetime
    recorded_at: UtcDatetime


# --- the bill ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    issued: BillIssued
    version: int
    settled: PaymentSettled | None = None
    correlation_id: str = ""
    issued_event_id: UUID | None = None
    # Bank withholding's requests of this bill (withholding.py) and its overdue record.
    collections: Collections = field(default_factory=Collections)
    overdue: BillOverdue | None = None


def evolve(bill: Bill | None, event: Event, envelope: Envelope) -> Bill | None:
    if isinstance(event, BillIssued):
        return Bill(event, envelope.stream_version, None, envelope.correlation_id, envelope.event_id)
    if bill is None:
        return None
    bill = replace(bill, version=envelope.stream_version, collections=bill.collections.fold(event))
    if isinstance(event, PaymentSettled) and bill.settled is None:
        return replace(bill, settled=event)
    if isinstance(event, BillOverdue) and bill.overdue is None:
        return replace(bill, overdue=event)
    return bill


def replay(history: Iterable[Envelope]) -> Bill | None:
    return aggregate.replay(history, evolve)


# --- decisions ---------------------------------------------------------------------------------

Decision = PaymentSettled | OverpaymentRecorded | ReconciliationExceptionRecorded


def decide(bill: Bill | None, notification: ChannelNotification, now: datetime) -> Decision:
    """What a verified payment notification does to its bill (services/payment/README.md, "Settlement")."""
    channel, txn = notification.channel, notification.transaction_id
    bank = notification.bank.name if notification.bank is not None else None
    if bill is None:
        return _exception("unknown_bill", notification, None, None, now)
    issued = bill.issued
    # What a settlement and an overpayment both record of the money: whose bill, who paid, how.
    money = {
        "payment_id": payment_id_for(channel, txn),
        "bill_id": issued.bill_id,
        "account_id": issued.account_id,
        "insured_person_id": issued.insured_person_id,
        "payer_id": notification.payer,
        "payer_name_masked": _payer_name(notification),
        "channel": channel,
        "channel_txn_id": txn,
        "amount_fen": notification.amount_fen,
        "bank": bank,
    }
    if bill.settled is not None:
        return OverpaymentRecorded(
            **money, paid_at=notification.paid_at, settling_payment_id=bill.settled.payment_id, recorded_at=now
        )
    if notification.amount_fen != issued.amount_fen:
        return _exception("amount_mismatch", notification, issued.bill_id, issued.amount_fen, now)
    return PaymentSettled(**money, settled_at=notification.paid_at)


def overdue(bill: Bill, today: date, now: datetime) -> BillOverdue | None:
    """The bill recorded overdue once, the day after its due day (`today` in Changzhou), if unpaid."""
    issued = bill.issued
    if bill.settled is not None or bill.overdue is not None or today <= issued.due_on:
        return None
    return BillOverdue(
        bill_id=issued.bill_id,
        account_id=issued.account_id,
        insured_person_id=issued.insured_person_id,
        period=issued.period,
        amount_fen=issued.amount_fen,
        due_on=issued.due_on,
        overdue_at=now,
    )


def _exception(
    code: ExceptionCode, notification: ChannelNotification, bill_id: UUID | None, expected: int | None, now: datetime
) -> ReconciliationExceptionRecorded:
    return ReconciliationExceptionRecorded(
        exception_id=exception_id_for(notification.channel, notification.transaction_id),
        code=code,
        channel=notification.channel,
        channel_txn_id=notification.transaction_id,
        out_trade_no=notification.out_trade_no,
        bill_id=bill_id,
        expected_fen=expected,
        amount_fen=notification.amount_fen,
        paid_at=notification.paid_at,
        recorded_at=now,
    )


def collection_failed(failed: CollectionFailed, now: datetime) -> CollectionFailureRecorded:
    return CollectionFailureRecorded(
        failure_id=failure_id_for(failed.transaction_id),
        out_trade_no=failed.out_trade_no,
        bill_id=bill_id_of(failed.out_trade_no),
        collection_request_id=failed.collection_request_id,
        channel_txn_id=failed.transaction_id,
        amount_fen=failed.amount_fen,
        bank=failed.bank.name,
        reason=failed.reason,
        bank_detail=failed.bank_detail,
        failed_at=failed.failed_at,
        recorded_at=now,
    )
