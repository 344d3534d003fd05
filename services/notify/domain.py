"""Pure decisions about text messages: which SMS a decision, a settlement, an overdue bill or a
failed withholding collection calls for, whether it is too old to text, and which event records its
fate (no I/O; times come in as arguments). What an attempt's outcome means is kernel.effects'
business, the same for every outbound effect."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid5

from contracts.events.base import Event, mask_phone
from contracts.events.notify import SmsFailed, SmsSent
from contracts.events.payment import (
    BillOverdue,
    Channel,
    PaymentSettled,
    WithholdingCollectionFailed,
    WithholdingFailureReason,
)
from contracts.events.review import ReviewDecided
from kernel.clock import local_date
from services.notify.templates import (
    COLLECTION_FAILED_TEMPLATE,
    OVERDUE_TEMPLATE,
    RECEIPT_TEMPLATE,
    Templates,
    join_reasons,
)

# Fixed namespace: the same cause always yields the same sms_id, on every replay and instance.
SMS_NAMESPACE = UUID("6f1d2c1e-6a0b-5f7e-9c55-4e0f1b9d3a27")
# Aliyun keeps send details for 30 days; no point asking about older days.
LOOKUP_DAYS_MAX = 30

State = Literal["awaiting_recipient", "pending", "sending", "sent", "failed", "skipped_stale"]
STATES: tuple[State, ...] = ("awaiting_recipient", "pending", "sending", "sent", "failed", "skipped_stale")
UNFINISHED: tuple[State, ...] = ("awaiting_recipient", "pending", "sending")
# Replay guard: a decision older than this when notify would make it sendable is not texted.
DEFAULT_MAX_DECISION_AGE = timedelta(hours=72)


def stream_id(sms_id: UUID) -> str:
    """The stream of one message's final event (SmsSent or SmsFailed)."""
    return f"sms-{sms_id}"


def sms_id_for(cause_event_id: UUID) -> UUID:
    """The message's id, derived from the event that caused it; also the provider's out-id."""
    return uuid5(SMS_NAMESPACE, str(cause_event_id))


# What a message reports: a review decision, a settlement (receipt), an overdue bill (reminder) or a
# failed bank withholding collection. It names the replay guard's note and metric (`stale_<cause>`).
Cause = Literal["decision", "settlement", "overdue_bill", "failed_collection"]
CAUSES: tuple[Cause, ...] = ("decision", "settlement", "overdue_bill", "failed_collection")


@dataclass(frozen=True)
class Subject:
    """What a message reports, for the causes keyed by neither `case_id` nor `payment_id`: the
    overdue bill (one reminder per `bill_id`) or the failed collection (one message per
    `collection_request_id`). Stored as `sms_messages.subject`, unique (migration 006)."""

    cause: Cause
    id: UUID

    @property
    def key(self) -> str:
        return f"{self.cause}:{self.id}"


@dataclass(frozen=True)
class SmsIntent:
    """One message to record. `decided_at` is when its cause happened (a decision's `decided_at`,
    a settlement's `settled_at`, a bill's `overdue_at`, a collection's `failed_at`): the replay
    guard's age. A message is unique per cause event and per what it reports (`case_id` of a
    decision, `payment_id` of a settlement, `subject` of a reminder or a collection failure)."""

    sms_id: UUID
    cause_event_id: UUID
    case_id: UUID | None
    application_id: UUID | None
    recipient_id: UUID
    template: str
    params: dict[str, str]
    text: str
    decided_at: datetime
    payment_id: UUID | None = None
    subject: Subject | None = None
    bill_id: UUID | None = None


def intent_for_decision(cause_event_id: UUID, decided: ReviewDecided, templates: Templates) -> SmsIntent:
    """Approved: what to do next; rejected: the reasons and the help line (guide PART-8, Q8)."""
    if decided.decision == "approved":
        template, params = "review_approved", {}
    else:
        template, params = "review_rejected", {"reasons": join_reasons([r.text for r in decided.reasons])}
    return SmsIntent(
        sms_id=sms_id_for(cause_event_id),
        cause_event_id=cause_event_id,
        case_id=decided.case_id,
        application_id=decided.application_id,
        recipient_id=decided.applicant_id,
        template=template,
        params=params,
        text=templates.render(template, params),
        decided_at=decided.decided_at,
    )


# --- payment receipts (issue 8, "Downstream": one receipt SMS per settlement) -----------------

# How the receipt names the channel (guide 二、缴费方式).
CHANNEL_NAMES: dict[Channel, str] = {
    "wechat": "微信",
    "alipay": "支付宝",
    "unionpay_pos": "银联POS",
    "bank_counter": "银行柜面",
    "bank_withholding": "银行卡代扣",
}


def yuan(fen: int) -> str:
    """Integer fen as yuan with exactly two decimals, by integer arithmetic only (12345 -> "123.45"):
    money is integer fen everywhere, and a float would misprint some amounts."""
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


def period_text(period: str) -> str:
    """A bill period `YYYY-MM` as the receipt says it: `YYYY年MM月`."""
    year, month = period.split("-")
    return f"{year}年{month}月"


def intent_for_settlement(
    cause_event_id: UUID, settled: PaymentSettled, period: str, templates: Templates
) -> SmsIntent:
    """The receipt to the insured person (also when someone else paid: 代人缴费): month, amount,
    channel, and the help line for payment questions (guide Q8, 96888732, in the template).
    `period` is the bill's (`BillIssued.period`): the settlement does not carry it."""
    params = {
        "period": period_text(period),
        "amount": yuan(settled.amount_fen),
        "channel": CHANNEL_NAMES[settled.channel],
    }
    return SmsIntent(
        sms_id=sms_id_for(cause_event_id),
        cause_event_id=cause_event_id,
        case_id=None,
        application_id=None,
        recipient_id=settled.insured_person_id,
        template=RECEIPT_TEMPLATE,
        params=params,
        text=templates.render(RECEIPT_TEMPLATE, params),
        decided_at=settled.settled_at,
        payment_id=settled.payment_id,
    )


def date_text(day: date) -> str:
    """A date as the texts say it: `2025年04月15日`."""
    return f"{day.year:04d}年{day.month:02d}月{day.day:02d}日"


# --- overdue bills and failed withholding collections (issue 8, "Downstream") ----------------


def intent_for_overdue_bill(cause_event_id: UUID, overdue: BillOverdue, templates: Templates) -> SmsIntent:
    """One reminder per overdue bill to the insured person: month, amount still due, the due date
    that passed, how to pay, and the help line for payment questions (guide Q8, in the template)."""
    params = {
        "period": period_text(overdue.period),
        "amount": yuan(overdue.amount_fen),
        "due": date_text(overdue.due_on),
    }
    return SmsIntent(
        sms_id=sms_id_for(cause_event_id),
        cause_event_id=cause_event_id,
        case_id=None,
        application_id=None,
        recipient_id=overdue.insured_person_id,
        template=OVERDUE_TEMPLATE,
        params=params,
        text=templates.render(OVERDUE_TEMPLATE, params),
        decided_at=overdue.overdue_at,
        subject=Subject("overdue_bill", overdue.bill_id),
        bill_id=overdue.bill_id,
    )


# How the message names why the bank could not collect (WithholdingCollectionFailed.reason).
REASON_NAMES: dict[WithholdingFailureReason, str] = {
    "insufficient_funds": "账户余额不足",
    "agreement_not_found": "扣缴协议不存在或已解除",
    "card_not_activated": "社保卡金融功能未激活",
    "account_abnormal": "账户状态异常",
    "refused": "银行拒绝扣款请求",
    "other": "其他原因",
}


def intent_for_failed_collection(
    cause_event_id: UUID, failed: WithholdingCollectionFailed, templates: Templates
) -> SmsIntent:
    """One message per failed withholding collection (银行卡签约扣费, guide 二(一)): month, amount
    asked for, the bank and why it said no; the next withholding run tries again, and WeChat or
    Alipay (江苏税务社保缴纳) pay it now. Two failed requests of one bill are two messages."""
    params = {
        "period": period_text(failed.period),
        "amount": yuan(failed.amount_fen),
        "bank": failed.bank,
        "reason": REASON_NAMES[failed.reason],
    }
    return SmsIntent(
        sms_id=sms_id_for(cause_event_id),
        cause_event_id=cause_event_id,
        case_id=None,
        application_id=None,
        recipient_id=failed.insured_person_id,
        template=COLLECTION_FAILED_TEMPLATE,
        params=params,
        text=templates.render(COLLECTION_FAILED_TEMPLATE, params),
        decided_at=failed.failed_at,
        subject=Subject("failed_collection", failed.collection_request_id),
        bill_id=failed.bill_id,
    )


# The log's `last_error` of a message that could not be sent because its recipient was erased
# (docs/personal-data.md); the code before the colon is stable.
ERASED_NOTE = "recipient_erased: the recipient's personal data was erased: not texted"


# --- replay guard ----------------------------------------------------------------------------
# Kafka topics keep every decision forever. A notify rebuilt from them (an empty schema, or a new
# consumer group reading from the beginning) would otherwise text every historic decision again.
# Rule: a decision that is OLDER than the limit (strictly) when notify would make it sendable —
# on first sight, or when its waiting message gets the phone — is recorded `skipped_stale` and
# never texted. Exactly at the limit it is still texted.


def stale_before(now: datetime, max_age: timedelta) -> datetime:
    """Decisions made before this instant are stale at `now`."""
    return now - max_age


def is_stale(decided_at: datetime, now: datetime, max_age: timedelta) -> bool:
    return decided_at < stale_before(now, max_age)


def stale_note(max_age: timedelta, when: Literal["first_seen", "recipient_known"], cause: Cause = "decision") -> str:
    """The log's `last_error` of a skipped message (no personal data): `stale_<cause>: …`, the cause
    in words after it (`stale_overdue_bill: overdue bill older than 72 h …`)."""
    hours, words = f"{max_age / timedelta(hours=1):g}", cause.replace("_", " ")
    if when == "first_seen":
        return f"stale_{cause}: {words} older than {hours} h when first seen: not texted (replay guard)"
    return f"stale_{cause}: {words} older than {hours} h when the phone became known: not texted late"


def cause_of(intent: SmsIntent) -> Cause:
    if intent.subject is not None:
        return intent.subject.cause
    return "settlement" if intent.payment_id is not None else "decision"


@dataclass(frozen=True)
class OutgoingSms:
    """A message as the sender hands it to a gateway (kernel.effects' effect for notify)."""

    sms_id: UUID
    cause_event_id: UUID
    case_id: UUID | None
    application_id: UUID | None
    recipient_id: UUID
    phone: str
    template: str
    params: dict[str, str]
    correlation_id: str

    @property
    def out_id(self) -> str:
        """The provider's out-id (Aliyun OutId): how a lookup finds the message again."""
        return str(self.sms_id)


def final_event(
    sms: OutgoingSms,
    state: Literal["sent", "failed"],
    provider: str,
    now: datetime,
    message_id: str | None = None,
    error_code: str | None = None,
) -> Event:
    """The event of a message's final state; the phone only masked."""
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
    if state == "sent":
        return SmsSent(**common, provider_message_id=message_id, sent_at=now)
    return SmsFailed(**common, error_code=error_code or "unknown_error", failed_at=now)


def lookup_dates(first_attempt: datetime, last_attempt: datetime) -> list[date]:
    """Every Shanghai calendar day on which an earlier attempt may have reached the provider."""
    first, last = local_date(first_attempt), local_date(last_attempt)
    first = max(first, last - timedelta(days=LOOKUP_DAYS_MAX - 1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def national_number(e164: str) -> str:
    """`+8613800138000` -> `13800138000`: the form mainland SMS providers expect."""
    return e164.removeprefix("+86")
