"""The application aggregate: state rebuilt from its own events, commands in, events out.

No I/O: the service layer passes the verified person, the reference data and the clock.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from contracts.envelope import Envelope
from contracts.events.base import Event, Sealed
from contracts.events.enrollment import (
    AgencyNoticeAccepted,
    ApplicationApproved,
    ApplicationDrafted,
    ApplicationRejected,
    ApplicationUnderReview,
    DocumentUploaded,
    EnrollmentSubmitted,
    NoticeAccepted,
    SubmittedDocument,
)
from contracts.events.review import ReviewCaseOpened, ReviewDecided, ReviewReason
from contracts.reference import DistrictDirectory
from kernel import aggregate
from kernel.problems import Conflict, Refused
from services.enrollment.ages import Gender
from services.enrollment.rules import AgePolicy, Choices, check_age, check_choices, check_documents


def stream_id(application_id: UUID) -> str:
    return f"application-{application_id}"


Status = Literal["draft", "submitted", "under_review", "approved", "rejected"]
# Seals a JSON object of personal fields for a person, under their key (kernel.personal.seal bound
# to the key identity holds for them).
Sealer = Callable[[UUID, Mapping[str, Any]], Sealed]
EDITABLE: frozenset[Status] = frozenset({"draft", "rejected"})


@dataclass(frozen=True)
class Person:
    """enrollment's own view of a verified person, from identity.events."""

    user_id: UUID
    phone: str | None
    name: str | None
    birth_date: date | None
    gender: Gender | None
    id_number_masked: str | None

    @property
    def verified(self) -> bool:
        return self.name is not None and self.birth_date is not None and self.gender is not None


@dataclass(frozen=True)
class Application:
    application_id: UUID
    applicant_id: UUID
    notice_version: str
    # The correlation id of the first event (NoticeAccepted): every later event of the
    # application carries it, whatever request or review fact caused it (docs/downstream.md).
    correlation_id: str
    version: int = 0
    choices: Choices | None = None
    documents: dict[str, DocumentUploaded] = field(default_factory=dict)
    status: Status = "draft"
    attempt: int = 0
    agency_code: str | None = None
    agency_name: str | None = None
    approved_at: datetime | None = None
    reasons: tuple[ReviewReason, ...] = ()
    submitted: EnrollmentSubmitted | None = None
    agency_notice_version: str | None = None
    agency_notice_accepted_at: datetime | None = None


def _choices(e: ApplicationDrafted | EnrollmentSubmitted) -> Choices:
    return Choices(e.pension_tier, e.medical_tier, e.household_kind, e.household_region_code, e.residence_district_code)


def evolve(app: Application | None, event: Event, envelope: Envelope) -> Application | None:
    """The application after one of its stored events (its version is the envelope's)."""
    if isinstance(event, NoticeAccepted):
        app = Application(event.application_id, event.applicant_id, event.notice_version, envelope.correlation_id)
    else:
        app = _apply(app, event) if app is not None else None
    return replace(app, version=envelope.stream_version) if app is not None else None


def _apply(app: Application, event: Event) -> Application:
    if isinstance(event, ApplicationDrafted):
        return replace(app, choices=_choices(event))
    if isinstance(event, DocumentUploaded):
        return replace(app, documents={**app.documents, event.kind: event})
    if isinstance(event, EnrollmentSubmitted):
        return replace(
            app, status="submitted", attempt=event.attempt, choices=_choices(event), reasons=(), submitted=event
        )
    if isinstance(event, ApplicationUnderReview):
        return replace(app, status="under_review", agency_code=event.agency_code, agency_name=event.agency_name)
    if isinstance(event, ApplicationApproved):
        return replace(app, status="approved", approved_at=event.decided_at)
    if isinstance(event, ApplicationRejected):
        return replace(app, status="rejected", reasons=tuple(event.reasons))
    if isinstance(event, AgencyNoticeAccepted):
        return replace(app, agency_notice_version=event.notice_version, agency_notice_accepted_at=event.accepted_at)
    return app


def replay(history: list[Envelope]) -> Application | None:
    return aggregate.replay(history, evolve)


# --- commands -------------------------------------------------------------------------------


def _require_verified(person: Person | None) -> Person:
    if person is None or not person.verified:
        raise Refused("not_verified", "请先完成实名认证后再申报。如已认证，请稍后再试。")
    return person


def _check_age(person: Person, today: date, policy: AgePolicy) -> None:
    assert person.birth_date is not None and person.gender is not None  # verified
    check_age(person.birth_date, person.gender, today, policy)


def _draft(app_id: UUID, applicant_id: UUID, choices: Choices, now: datetime) -> ApplicationDrafted:
    return ApplicationDrafted(
        application_id=app_id,
        applicant_id=applicant_id,
        pension_tier=choices.pension_tier,
        medical_tier=choices.medical_tier,
        household_kind=choices.household_kind,
        household_region_code=choices.household_region_code,
        residence_district_code=choices.residence_district_code,
        drafted_at=now,
    )


def check_notice(accepted_version: str | None, current_version: str) -> None:
    """Guide PART-4: the notice must be read and agreed to, in its current version."""
    if not accepted_version:
        raise Refused("notice_not_accepted", "请先阅读并同意《灵活就业人员参保登记须知》。")
    if accepted_version != current_version:
        raise Refused(
            "notice_outdated", "参保登记须知已更新，请重新阅读并同意最新版本。", current_version=current_version
        )


def open_application(
    app_id: UUID,
    person: Person | None,
    notice_version: str | None,
    current_notice: str,
    choices: Choices,
    districts: DistrictDirectory,
    policy: AgePolicy,
    today: date,
    now: datetime,
) -> list[Event]:
    """Guide PART-4 and PART-5; who may apply at all (Q2: age and household) is told now, before
    any document is uploaded, and checked again at submission."""
    check_notice(notice_version, current_notice)
    verified = _require_verified(person)
    _check_age(verified, today, policy)
    check_choices(choices, districts)
    accepted = NoticeAccepted(
        application_id=app_id, applicant_id=verified.user_id, notice_version=current_notice, accepted_at=now
    )
    return [accepted, _draft(app_id, verified.user_id, choices, now)]


def _require_editable(app: Application) -> None:
    if app.status not in EDITABLE:
        raise Conflict("not_editable", "申报已提交，审核结束前不能修改。")


def check_uploadable(app: Application) -> None:
    """Whether a document may be uploaded now: asked before the upload's body is read."""
    _require_editable(app)


def agency_code_of(app: Application, districts: DistrictDirectory) -> str | None:
    """The accepting agency of the latest submission, as review decides it: the one its case
    names once opened, else the agency of the submission's residence district (the same rule
    review applies, contracts.reference). None for a draft never submitted."""
    if app.submitted is None:
        return None
    if app.status != "submitted" and app.agency_code is not None:
        return app.agency_code
    return districts.agency_for(app.submitted.residence_district_code).code


def correct(app: Application, choices: Choices, districts: DistrictDirectory, now: datetime) -> ApplicationDrafted:
    """A draft, or a rejected application (guide PART-8: correct and submit again)."""
    _require_editable(app)
    check_choices(choices, districts)
    return _draft(app.application_id, app.applicant_id, choices, now)


def upload(
    app: Application, kind: str, sha256: str, content_type: str, size: int, blob_ref: str, now: datetime
) -> DocumentUploaded:
    _require_editable(app)
    return DocumentUploaded(
        application_id=app.application_id,
        kind=kind,
        sha256=sha256,
        content_type=content_type,
        size_bytes=size,
        blob_ref=blob_ref,
        uploaded_at=now,
    )


def _require_submittable(app: Application) -> Choices:
    if app.status in ("submitted", "under_review"):
        raise Conflict("already_submitted", "申报已提交，请耐心等待受理机构审核（1-2个工作日）。")
    if app.status == "approved":
        raise Conflict("already_approved", "申报已审核通过，无需重复提交。")
    assert app.choices is not None, "an application is drafted when it is opened"
    return app.choices


def submit(
    app: Application,
    person: Person | None,
    policy: AgePolicy,
    districts: DistrictDirectory,
    today: date,
    now: datetime,
    seal: Sealer,
) -> EnrollmentSubmitted:
    """Guide PART-7 (提交申报), checked against Q2 and PART-6 on the day of submission.

    `seal`: the applicant's name, birth date and phone travel sealed under their own key
    (docs/personal-data.md); the service layer binds it to the key identity holds."""
    choices = _require_submittable(app)
    verified = _require_verified(person)
    if verified.phone is None or verified.id_number_masked is None:
        raise Refused("not_verified", "实名认证信息尚在同步，请稍后再提交。")
    assert verified.birth_date is not None and verified.gender is not None and verified.name is not None
    _check_age(verified, today, policy)  # again: a birthday may have passed since the opening
    check_choices(choices, districts)
    check_documents(choices.household_kind, app.documents.keys())
    return EnrollmentSubmitted(
        application_id=app.application_id,
        applicant_id=app.applicant_id,
        attempt=app.attempt + 1,
        id_number_masked=verified.id_number_masked,
        gender=verified.gender,
        personal=seal(
            app.applicant_id,
            {"name": verified.name, "birth_date": verified.birth_date.isoformat(), "phone": verified.phone},
        ),
        pension_tier=choices.pension_tier,
        medical_tier=choices.medical_tier,
        household_kind=choices.household_kind,
        household_region_code=choices.household_region_code,
        residence_district_code=choices.residence_district_code,
        documents=[_submitted(d) for d in sorted(app.documents.values(), key=lambda d: d.kind)],
        notice_version=app.notice_version,
        submitted_at=now,
    )


def _submitted(d: DocumentUploaded) -> SubmittedDocument:
    return SubmittedDocument(kind=d.kind, sha256=d.sha256, blob_ref=d.blob_ref, content_type=d.content_type)


# --- after approval: the labour-affairs agency notice, then the registration form ---------------


def _require_approved(app: Application) -> None:
    if app.status != "approved":
        raise Conflict("not_approved", "申请审核通过后方可阅读《劳动事务代理人员须知》并打印登记表。")


def accept_agency_notice(
    app: Application, notice_version: str, current_version: str, now: datetime
) -> list[AgencyNoticeAccepted]:
    """Guide PART-8: after approval the applicant must read 《劳动事务代理人员须知》.

    Accepting again is idempotent: no new event, whatever version is sent (a wrong one is still
    refused first, so a client learns it showed an old text)."""
    _require_approved(app)
    if notice_version != current_version:
        raise Refused(
            "notice_outdated",
            "劳动事务代理人员须知已更新，请重新阅读并同意最新版本。",
            current_version=current_version,
        )
    if app.agency_notice_version is not None:
        return []
    return [
        AgencyNoticeAccepted(
            application_id=app.application_id,
            applicant_id=app.applicant_id,
            notice_version=current_version,
            accepted_at=now,
        )
    ]


def check_printable(app: Application) -> tuple[EnrollmentSubmitted, datetime, str]:
    """Guide PART-8: the registration form after approval, once the agency notice was read.

    Returns the submission, the approval time and the accepted notice version for the form."""
    if app.status != "approved" or app.submitted is None or app.approved_at is None:
        raise Conflict("not_approved", "申请审核通过后方可打印《常州市劳动事务代理申请登记表》。")
    if app.agency_notice_version is None:
        raise Conflict(
            "agency_notice_not_read", "请先阅读并同意《劳动事务代理人员须知》，再打印《常州市劳动事务代理申请登记表》。"
        )
    return app.submitted, app.approved_at, app.agency_notice_version


# --- what enrollment learns from review -------------------------------------------------------


def _current(app: Application, attempt: int) -> bool:
    """A review fact counts only for the submission the application is waiting on: a decision
    about attempt 1 that arrives after attempt 2 was submitted must not flip the state."""
    return attempt == app.attempt and app.status in ("submitted", "under_review")


def on_case_opened(app: Application, case: ReviewCaseOpened) -> ApplicationUnderReview | None:
    if not _current(app, case.attempt) or app.status != "submitted":
        return None
    return ApplicationUnderReview(
        application_id=app.application_id,
        applicant_id=app.applicant_id,
        attempt=case.attempt,
        case_id=case.case_id,
        agency_code=case.agency_code,
        agency_name=getattr(case, "agency_name", None),  # optional in the contract; older cases lack it
        due_on=case.due_on,
        opened_at=case.opened_at,
    )


def on_decided(app: Application, decided: ReviewDecided) -> ApplicationApproved | ApplicationRejected | None:
    if not _current(app, decided.attempt):
        return None
    common = {
        "application_id": app.application_id,
        "applicant_id": app.applicant_id,
        "attempt": decided.attempt,
        "case_id": decided.case_id,
        "decided_at": decided.decided_at,
    }
    if decided.decision == "approved":
        return ApplicationApproved.model_validate(common)
    return ApplicationRejected.model_validate({**common, "reasons": decided.reasons})
