"""Pure decisions about text messages: which SMS a decision calls for, and what an attempt's
outcome means for the message (no I/O; times come in as arguments)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from contracts.events.review import ReviewDecided
from services.notify.templates import Templates, join_reasons

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Fixed namespace: the same cause always yields the same sms_id, on every replay and instance.
SMS_NAMESPACE = UUID("6f1d2c1e-6a0b-5f7e-9c55-4e0f1b9d3a27")
# Aliyun keeps send details for 30 days; no point asking about older days.
LOOKUP_DAYS_MAX = 30
MAX_RETRY_DELAY = timedelta(hours=1)

State = Literal["awaiting_recipient", "pending", "sending", "sent", "failed", "skipped_stale"]
STATES: tuple[State, ...] = ("awaiting_recipient", "pending", "sending", "sent", "failed", "skipped_stale")
UNFINISHED: tuple[State, ...] = ("awaiting_recipient", "pending", "sending")
# Replay guard: a decision older than this when notify would make it sendable is not texted.
DEFAULT_MAX_DECISION_AGE = timedelta(hours=72)


def sms_id_for(cause_event_id: UUID) -> UUID:
    """The message's id, derived from the event that caused it; also the provider's out-id."""
    return uuid5(SMS_NAMESPACE, str(cause_event_id))


@dataclass(frozen=True)
class SmsIntent:
    sms_id: UUID
    cause_event_id: UUID
    case_id: UUID
    application_id: UUID
    recipient_id: UUID
    template: str
    params: dict[str, str]
    text: str
    decided_at: datetime


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


def stale_note(max_age: timedelta, when: Literal["first_seen", "recipient_known"]) -> str:
    """The log's `last_error` of a skipped message (no personal data)."""
    hours = f"{max_age / timedelta(hours=1):g}"
    if when == "first_seen":
        return f"stale_decision: decision older than {hours} h when first seen: not texted (replay guard)"
    return f"stale_decision: decision older than {hours} h when the phone became known: not texted late"


@dataclass(frozen=True)
class SendResult:
    """What a gateway said. A call that said nothing (timeout, crash) has no SendResult."""

    status: Literal["accepted", "retryable", "permanent"]
    message_id: str | None = None
    error_code: str | None = None

    @classmethod
    def accepted(cls, message_id: str | None) -> "SendResult":
        return cls("accepted", message_id=message_id)

    @classmethod
    def refused(cls, error_code: str, *, retryable: bool) -> "SendResult":
        return cls("retryable" if retryable else "permanent", error_code=error_code)


@dataclass(frozen=True)
class Next:
    """What to record after an attempt."""

    state: Literal["sent", "failed", "pending"]
    uncertain: bool = False
    message_id: str | None = None
    error_code: str | None = None
    retry_at: datetime | None = None


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def after_attempt(
    result: SendResult | None, error: str, attempts: int, max_attempts: int, now: datetime, backoff: float
) -> Next:
    """`result` None means the outcome is unknown: the message may have gone out, so it is never
    given up blindly; the next try asks the provider first (and gives up only if it was not sent)."""
    retry_at = now + retry_delay(attempts, backoff)
    if result is None:
        return Next("pending", uncertain=True, error_code=error, retry_at=retry_at)
    if result.status == "accepted":
        return Next("sent", message_id=result.message_id)
    code = result.error_code or "unknown_error"
    if result.status == "permanent" or attempts >= max_attempts:
        return Next("failed", error_code=code)
    return Next("pending", error_code=code, retry_at=retry_at)


def lookup_dates(first_attempt: datetime, last_attempt: datetime) -> list[date]:
    """Every Shanghai calendar day on which an earlier attempt may have reached the provider."""
    first = first_attempt.astimezone(SHANGHAI).date()
    last = last_attempt.astimezone(SHANGHAI).date()
    first = max(first, last - timedelta(days=LOOKUP_DAYS_MAX - 1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def national_number(e164: str) -> str:
    """`+8613800138000` -> `13800138000`: the form mainland SMS providers expect."""
    return e164.removeprefix("+86")
