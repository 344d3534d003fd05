"""The application status view, folded from a SET of facts.

The facts are the application's own events (recorded by the service layer in the transaction
that appends them; review's outcome arrives as enrollment's own copies ApplicationUnderReview /
ApplicationApproved / ApplicationRejected) and the other services' facts the `status`
subscription reads (identity, payment, notify). They interleave differently on every replay and
may be delivered twice, so
the view is a pure function of the set of envelopes: duplicates collapse on `event_id`, facts
are ordered by their own times (ties by stream and version), and every field is derived by a
rule that does not depend on arrival order (e.g. "the decision of the latest attempt").
"""

from collections.abc import Iterable
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from contracts.documents import DOCUMENT_LABELS
from contracts.envelope import Envelope
from contracts.events import topic_of
from contracts.events.base import Event
from contracts.events.enrollment import EVENTS as ENROLLMENT_EVENTS
from contracts.events.enrollment import (
    AgencyNoticeAccepted,
    ApplicationApproved,
    ApplicationDrafted,
    ApplicationRejected,
    ApplicationUnderReview,
    DocumentUploaded,
    EnrollmentSubmitted,
    NoticeAccepted,
)
from contracts.events.identity import UserVerified
from contracts.events.notify import SmsFailed, SmsSent
from contracts.events.payment import ContributionAccountOpened, PaymentSettled
from contracts.upcasting import decode

ViewStatus = Literal["draft", "submitted", "under_review", "approved", "rejected", "active"]

# The other services' facts the status is made of: what the `status` subscription reads.
SUBSCRIBED_FACTS: tuple[type[Event], ...] = (
    UserVerified,
    ContributionAccountOpened,
    PaymentSettled,
    SmsSent,
    SmsFailed,
)
SUBSCRIBED_TOPICS: tuple[str, ...] = tuple(dict.fromkeys(topic_of(cls) for cls in SUBSCRIBED_FACTS))
# Everything the view is folded from: enrollment's own events plus the subscribed facts.
FACT_TYPES: tuple[type[Event], ...] = (*ENROLLMENT_EVENTS, *SUBSCRIBED_FACTS)
_TIME_FIELDS = (
    "accepted_at", "drafted_at", "uploaded_at", "submitted_at", "opened_at", "decided_at",
    "verified_at", "settled_at", "sent_at", "failed_at",
)  # fmt: skip
_OPENED = (ApplicationUnderReview,)
_DECIDED = (ApplicationApproved, ApplicationRejected)


class TimelineEntry(BaseModel):
    kind: str
    at: datetime
    label: str
    attempt: int | None = None


class ReasonView(BaseModel):
    code: str
    text: str


class StatusView(BaseModel):
    application_id: UUID
    applicant_id: UUID | None
    status: ViewStatus
    attempt: int
    notice_version: str | None = None
    pension_tier: int | None = None
    medical_tier: int | None = None
    household_kind: str | None = None
    household_region_code: str | None = None
    residence_district_code: str | None = None
    documents: list[str] = []
    case_id: UUID | None = None  # the review case of the latest submission, once opened
    agency_code: str | None = None
    agency_name: str | None = None
    review_due_on: date | None = None
    review_reasons: list[ReasonView] = []
    decided_at: datetime | None = None
    agency_notice_version: str | None = None
    agency_notice_accepted_at: datetime | None = None
    notified: bool = False
    notified_at: datetime | None = None
    active_since: datetime | None = None
    timeline: list[TimelineEntry] = []


class Fact:
    """One decoded event with its envelope."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.event = decode(envelope)
        self.at: datetime = next(
            (getattr(self.event, f) for f in _TIME_FIELDS if hasattr(self.event, f)), envelope.occurred_at
        )

    @property
    def attempt(self) -> int | None:
        value = getattr(self.event, "attempt", None)
        return value if isinstance(value, int) else None

    def sort_key(self) -> tuple[datetime, str, int, str]:
        e = self.envelope
        return (self.at, e.stream_id, e.stream_version, str(e.event_id))


def links(envelope: Envelope) -> tuple[UUID | None, UUID | None]:
    """(application_id, person_id) a fact belongs to, from its data."""
    data = envelope.data
    app = data.get("application_id")
    person = next(
        (data[k] for k in ("applicant_id", "insured_person_id", "recipient_id", "user_id") if k in data), None
    )
    return (UUID(str(app)) if app else None, UUID(str(person)) if person else None)


def fold(application_id: UUID, envelopes: Iterable[Envelope]) -> StatusView | None:
    unique = {e.event_id: e for e in envelopes}
    facts = sorted((Fact(e) for e in unique.values()), key=Fact.sort_key)
    own = [f for f in facts if getattr(f.event, "application_id", None) == application_id]
    if not own:
        return None
    applicant = next((getattr(f.event, "applicant_id", None) for f in own if hasattr(f.event, "applicant_id")), None)
    personal = [f for f in facts if links(f.envelope) == (None, applicant)]
    return _view(application_id, applicant, own, personal)


def _latest_attempt(own: list[Fact]) -> int:
    return max(
        (f.attempt or 0 for f in own if isinstance(f.event, (EnrollmentSubmitted, *_OPENED, *_DECIDED))), default=0
    )


def _of_attempt(own: list[Fact], kinds: tuple[type[Event], ...], attempt: int) -> Fact | None:
    return next((f for f in own if isinstance(f.event, kinds) and f.attempt == attempt), None)


def _decision_ids(decision: Fact | None) -> set[str]:
    """The id of the ReviewDecided behind a decision (enrollment's copy names it as its cause;
    notify's SmsSent names it as its `causation_event_id`)."""
    if decision is None or decision.envelope.causation_id is None:
        return set()
    return {decision.envelope.causation_id}


def _view(application_id: UUID, applicant: UUID | None, own: list[Fact], personal: list[Fact]) -> StatusView:
    attempt = _latest_attempt(own)
    opened = _of_attempt(own, _OPENED, attempt) if attempt else None
    decision = _of_attempt(own, _DECIDED, attempt) if attempt else None
    decided = _decision_outcome(decision)
    all_decisions = [f for f in own if isinstance(f.event, _DECIDED)]
    decision_ids = set().union(*(_decision_ids(f) for f in all_decisions)) if all_decisions else set()
    # SmsSent names the application since notify's contract gained application_id; older ones
    # name only the person: look in both.
    sms = [
        f
        for f in [*own, *personal]
        if isinstance(f.event, SmsSent | SmsFailed) and str(f.event.causation_event_id) in decision_ids
    ]
    sent = [
        f for f in sms if isinstance(f.event, SmsSent) and str(f.event.causation_event_id) in _decision_ids(decision)
    ]
    payments = [f for f in personal if isinstance(f.event, PaymentSettled)] if decided == "approved" else []
    view = StatusView(
        application_id=application_id,
        applicant_id=applicant,
        status=_status(attempt, opened, decided, payments),
        attempt=attempt,
        case_id=_case_id(opened, decision),
        agency_code=getattr(opened.event, "agency_code", None) if opened else None,
        agency_name=getattr(opened.event, "agency_name", None) if opened else None,
        review_due_on=getattr(opened.event, "due_on", None) if opened else None,
        review_reasons=_reasons(decision) if decided == "rejected" else [],
        decided_at=decision.at if decision else None,
        notified=bool(sent),
        notified_at=min(f.at for f in sent) if sent else None,
        active_since=min(f.at for f in payments) if payments else None,
        documents=sorted({f.event.kind for f in own if isinstance(f.event, DocumentUploaded)}),
    )
    _apply_choices(view, own)
    agency_notice = next((f for f in own if isinstance(f.event, AgencyNoticeAccepted)), None)  # one per application
    if agency_notice is not None:
        assert isinstance(agency_notice.event, AgencyNoticeAccepted)
        view.agency_notice_version = agency_notice.event.notice_version
        view.agency_notice_accepted_at = agency_notice.at
    verified = [f for f in personal if isinstance(f.event, UserVerified)]
    view.timeline = _timeline(
        sorted({id(f): f for f in [*verified, *own, *sms, *payments]}.values(), key=Fact.sort_key)
    )
    return view


def _case_id(opened: Fact | None, decision: Fact | None) -> UUID | None:
    found = decision or opened
    return found.event.case_id if found and isinstance(found.event, (*_OPENED, *_DECIDED)) else None


def _decision_outcome(decision: Fact | None) -> str | None:
    if decision is None:
        return None
    return "approved" if isinstance(decision.event, ApplicationApproved) else "rejected"


def _status(attempt: int, opened: Fact | None, decided: str | None, payments: list[Fact]) -> ViewStatus:
    if attempt == 0:
        return "draft"
    if decided == "approved":
        return "active" if payments else "approved"
    if decided == "rejected":
        return "rejected"
    return "under_review" if opened else "submitted"


def _reasons(decision: Fact | None) -> list[ReasonView]:
    reasons = getattr(decision.event, "reasons", []) if decision else []
    return [ReasonView(code=r.code, text=r.text) for r in reasons]


def _apply_choices(view: StatusView, own: list[Fact]) -> None:
    """Tiers and household as last chosen: the highest version of the application's stream."""
    chosen = [f for f in own if isinstance(f.event, ApplicationDrafted | EnrollmentSubmitted)]
    notice = next((f.event for f in own if isinstance(f.event, NoticeAccepted)), None)
    view.notice_version = notice.notice_version if notice else None
    if not chosen:
        return
    latest = max(chosen, key=lambda f: f.envelope.stream_version).event
    assert isinstance(latest, ApplicationDrafted | EnrollmentSubmitted)
    view.pension_tier = latest.pension_tier
    view.medical_tier = latest.medical_tier
    view.household_kind = latest.household_kind
    view.household_region_code = latest.household_region_code
    view.residence_district_code = latest.residence_district_code


def _entry(fact: Fact) -> TimelineEntry | None:
    event, attempt = fact.event, fact.attempt
    labels: dict[type[Event], tuple[str, str]] = {
        UserVerified: ("verified", "完成实名认证"),
        NoticeAccepted: ("notice_accepted", "阅读并同意参保登记须知"),
        ApplicationDrafted: ("drafted", "选择参保险种及缴费档次"),
        EnrollmentSubmitted: ("submitted", "提交申报"),
        ApplicationUnderReview: ("review_opened", "受理机构已受理，审核中"),
        ApplicationApproved: ("approved", "审核通过"),
        ApplicationRejected: ("rejected", "审核不通过"),
        AgencyNoticeAccepted: ("agency_notice_accepted", "阅读劳动事务代理人员须知"),
        ContributionAccountOpened: ("account_opened", "开立缴费账户"),
        PaymentSettled: ("payment_settled", "缴费成功"),
        SmsSent: ("sms_sent", "短信通知已发送"),
        SmsFailed: ("sms_failed", "短信通知发送失败"),
    }
    if isinstance(event, DocumentUploaded):
        return TimelineEntry(kind="document_uploaded", at=fact.at, label=f"上传{DOCUMENT_LABELS[event.kind]}")
    found = labels.get(type(event))
    return TimelineEntry(kind=found[0], at=fact.at, label=found[1], attempt=attempt) if found else None


def _timeline(facts: list[Fact]) -> list[TimelineEntry]:
    """Each fact with its time, in order (facts of other kinds have no entry)."""
    return [entry for entry in map(_entry, facts) if entry is not None]
