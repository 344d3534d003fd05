"""The review case aggregate: pure decisions, commands in, events out (no I/O).

A case is the review of one submission (application, attempt). It is opened once, decided once.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from contracts.envelope import Envelope
from contracts.events.base import Event, mask_phone
from contracts.events.enrollment import EnrollmentSubmitted, SubmittedPersonal
from contracts.events.review import ReviewCaseOpened, ReviewDecided, ReviewReason
from contracts.reference import Agency
from kernel import aggregate
from kernel.clock import local_date
from kernel.problems import Conflict, Refused
from services.review.reasons import ReasonCatalogue
from services.review.workdays import WorkingCalendar

Decision = Literal["approved", "rejected"]

# Never change: case ids derived from it are stored in events and on Kafka.
_CASE_NAMESPACE = UUID("6f1d8c52-4a0e-4b7f-9a57-3c2e1d0b8a91")


def case_id_for(application_id: UUID, attempt: int) -> UUID:
    """One case per submission: the id follows from (application, attempt), so a redelivered or
    re-published EnrollmentSubmitted, whatever its event_id, names the same case."""
    return uuid5(_CASE_NAMESPACE, f"{application_id}/{attempt}")


def stream_id(case_id: UUID) -> str:
    return f"case-{case_id}"


@dataclass(frozen=True)
class Case:
    opened: ReviewCaseOpened
    opened_event_id: UUID
    correlation_id: str
    decided: ReviewDecided | None = None

    @property
    def version(self) -> int:
        return 1 + (self.decided is not None)


def evolve(case: Case | None, event: Event, envelope: Envelope) -> Case | None:
    """One stored event applied to the case; `event` is already upcast to its newest version."""
    if isinstance(event, ReviewCaseOpened):
        return Case(opened=event, opened_event_id=envelope.event_id, correlation_id=envelope.correlation_id)
    if isinstance(event, ReviewDecided) and case is not None:
        return replace(case, decided=event)
    return case


def replay(history: Iterable[Envelope]) -> Case | None:
    return aggregate.replay(history, evolve)


def open_case(
    submitted: EnrollmentSubmitted, agency: Agency, calendar: WorkingCalendar, due_working_days: int, now: datetime
) -> ReviewCaseOpened:
    """Guide PART-8: the agency answers within 1–2 working days of the submission (提交申报)."""
    return ReviewCaseOpened(
        case_id=case_id_for(submitted.application_id, submitted.attempt),
        application_id=submitted.application_id,
        applicant_id=submitted.applicant_id,
        attempt=submitted.attempt,
        agency_code=agency.code,
        agency_name=agency.name,
        due_on=calendar.add_working_days(local_date(submitted.submitted_at), due_working_days),
        opened_at=now,
    )


# What the reviewer is shown instead of the name of a person whose data was erased.
ERASED_NAME = "（已删除）"


@dataclass(frozen=True)
class ApplicantData:
    """The applicant's sealed facts of a submission, opened for the reviewer (docs/personal-data.md):
    the phone only masked, as the case keeps it."""

    name: str
    birth_date: date
    phone_masked: str


def applicant_data(opened: Mapping[str, Any] | None) -> ApplicantData | None:
    """From the opened `personal` of an EnrollmentSubmitted; None (its key erased) stays None."""
    if opened is None:
        return None
    fields = SubmittedPersonal.model_validate(opened)
    return ApplicantData(name=fields.name, birth_date=fields.birth_date, phone_masked=mask_phone(fields.phone))


@dataclass(frozen=True)
class ReasonInput:
    code: str
    text: str | None = None


def decide(
    case: Case,
    decision: Decision,
    reasons: Sequence[ReasonInput],
    catalogue: ReasonCatalogue,
    reviewer_id: UUID,
    now: datetime,
) -> ReviewDecided:
    if case.decided is not None:
        raise Conflict("already_decided", "该申报已审核完毕，不能重复审核。")
    if decision == "approved" and reasons:
        raise Refused("reasons_not_allowed", "审核通过时无需填写不通过原因。")
    if decision == "rejected" and not reasons:
        raise Refused("reasons_required", "审核不通过时须至少选择一项原因。")
    opened = case.opened
    return ReviewDecided(
        case_id=opened.case_id,
        application_id=opened.application_id,
        applicant_id=opened.applicant_id,
        attempt=opened.attempt,
        decision=decision,
        reasons=[_reason(r, catalogue) for r in reasons],
        reviewer_id=reviewer_id,
        decided_at=now,
    )


def _reason(given: ReasonInput, catalogue: ReasonCatalogue) -> ReviewReason:
    """The SMS shows `text`, so it carries the label and the reviewer's own words together."""
    known = catalogue.get(given.code)
    if known is None:
        raise Refused("invalid_reason", f"不通过原因“{given.code}”不在规定的原因列表中。", reason_code=given.code)
    own_words = (given.text or "").strip()
    if known.text_required and not own_words:
        raise Refused("reason_text_required", f"选择“{known.label}”时须填写具体说明。", reason_code=given.code)
    return ReviewReason(code=known.code, text=f"{known.label}：{own_words}" if own_words else known.label)


def age_on(birth: date, day: date) -> int:
    """Full years (周岁) on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def is_overdue(due_on: date, decided: bool, today: date) -> bool:
    """The decision is due by the end of `due_on`; a pending case is late from the next day."""
    return not decided and today > due_on
