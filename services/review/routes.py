"""review's HTTP routes for the reviewer console: the case queue and decisions, and the shapes
reviewers and operators read."""

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from contracts.http import document_url
from contracts.reference import DistrictDirectory
from kernel.audit import client_of
from kernel.auth import CurrentPrincipal, PresentedToken, Principal, require_role
from kernel.clock import local_date, today_in_changzhou
from kernel.web import PROBLEM_RESPONSES, StrictBody, problem_responses
from services.review import domain
from services.review.projections import CaseQuery, StatusFilter
from services.review.separation import refuse_own_case
from services.review.service import ReviewService
from services.review.workdays import WorkingCalendar

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

Staff = Annotated[Principal, require_role("reviewer", "operator")]
Reviewer = Annotated[Principal, require_role("reviewer")]


class ReasonIn(StrictBody):
    code: str = Field(min_length=1, max_length=64, examples=["documents_unreadable"])
    # Short enough to fit in the SMS together with the label and the help line.
    text: str | None = Field(default=None, max_length=200, examples=["身份证反面照片模糊，请重新上传。"])


class DecisionIn(StrictBody):
    decision: Literal["approved", "rejected"]
    reasons: list[ReasonIn] = Field(default_factory=list, max_length=10)


class ReasonCodeView(BaseModel):
    code: str
    label: str
    text_required: bool


class AgencyView(BaseModel):
    code: str
    name: str


class ApplicantFacts(BaseModel):
    """The submission as the applicant declared it, to check against the documents."""

    applicant_id: UUID
    name: str = Field(description=f"Legal name; “{domain.ERASED_NAME}” once the person's data was erased.")
    personal_data_erased: bool = Field(
        default=False, description="The person's data was erased: name, birth date and phone are gone."
    )
    id_number_masked: str
    gender: str
    birth_date: date | None = Field(description="None once the person's data was erased.")
    age_at_submission: int | None = Field(
        description="Full years (周岁) on the submission day, Asia/Shanghai; None once the data was erased."
    )
    phone_masked: str | None = Field(description="None once the person's data was erased.")
    household_kind: str
    household_region_code: str
    residence_district_code: str
    pension_tier: int | None
    medical_tier: int | None


class DocumentLink(BaseModel):
    kind: str
    content_type: str
    sha256: str = Field(description="Of the file as submitted: a re-upload would not match.")
    url: str


class ReasonView(BaseModel):
    code: str
    text: str


class CaseView(BaseModel):
    case_id: UUID
    application_id: UUID
    attempt: int
    status: str
    agency: AgencyView
    submitted_at: datetime
    opened_at: datetime
    due_on: date
    overdue: bool
    due_working_days: int = Field(
        description="Working days the agency had from submission to `due_on` (review's calendar, with its overrides)."
    )
    working_days_left: int = Field(
        description="Working days after today up to `due_on`; 0 when due today, overdue or decided."
    )
    working_days_late: int = Field(description="Working days `due_on` lies behind today for an overdue case; else 0.")
    applicant: ApplicantFacts
    documents: list[DocumentLink]
    decision: str | None = None
    reasons: list[ReasonView] = []
    reviewer_id: UUID | None = None
    decided_at: datetime | None = None


class CaseList(BaseModel):
    status: str
    agency: str | None
    application_id: UUID | None = None
    today: date = Field(description="The day (Asia/Shanghai) against which `overdue` was judged.")
    cases: list[CaseView]


def service(request: Request) -> ReviewService:
    svc: ReviewService = request.app.state.review
    return svc


Service = Annotated[ReviewService, Depends(service)]


def _scope(principal: Principal) -> str | None:
    """The agency whose cases this principal may see and decide (identity puts a bound reviewer's
    agency code in the token's scope); None: every agency's. Only a reviewer is limited: an
    operator oversees every agency."""
    return principal.scope if principal.role == "reviewer" else None


@router.get("/cases", summary="The review queue (待审核): pending cases, most urgent first")
async def list_cases(
    request: Request,
    svc: Service,
    principal: Staff,
    status: StatusFilter = "pending",
    agency: Annotated[
        str | None,
        Query(
            max_length=32,
            description="Only this agency's cases. A reviewer bound to an agency always gets that agency's "
            "(another agency's: 403 not_your_agency).",
        ),
    ] = None,
    application_id: Annotated[
        UUID | None,
        Query(description="Only this application's cases (one per submission); with `status=all` for decided ones."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CaseList:
    today = today_in_changzhou()
    scope = _scope(principal)
    rows = await svc.list_cases(CaseQuery(status, agency, application_id), limit, offset, scope=scope)
    await svc.record_reads(principal, rows, client_of(request))
    return CaseList(
        status=status,
        agency=scope or agency,
        application_id=application_id,
        today=today,
        cases=[_view(request, r, today) for r in rows],
    )


@router.get("/cases/{case_id}", summary="One review case")
async def get_case(case_id: UUID, request: Request, svc: Service, principal: Staff) -> CaseView:
    row = await svc.case_row(case_id, _scope(principal))
    await svc.record_reads(principal, [row], client_of(request))
    return _view(request, row, today_in_changzhou())


@router.post(
    "/cases/{case_id}/decision",
    status_code=201,
    summary="Decide: 审核通过 or 审核不通过 with reasons",
    description="403 own_case: the applicant has the reviewer's own ID number (asked of identity); "
    "503 identity_unavailable: identity could not be asked, nothing was decided.",
    responses=problem_responses(503),
)
async def decide(
    case_id: UUID, body: DecisionIn, request: Request, svc: Service, reviewer: Reviewer, token: PresentedToken
) -> CaseView:
    reasons = [domain.ReasonInput(code=r.code, text=r.text) for r in body.reasons]
    scope = _scope(reviewer)
    # Separation of duties (services/review/README.md, "Own cases"): 403 own_case, asked of identity.
    case = await svc.case_row(case_id, scope)  # 404, not_your_agency first
    await refuse_own_case(request.app.state.same_person, token, case["applicant_id"])
    await svc.decide(case_id, body.decision, reasons, reviewer.user_id, scope=scope, client=client_of(request))
    return _view(request, await svc.case_row(case_id, scope), today_in_changzhou())


@router.get("/reason-codes", summary="The reasons a reviewer may give for 审核不通过")
async def reason_codes(request: Request, _: CurrentPrincipal) -> list[ReasonCodeView]:
    catalogue = request.app.state.rules.reasons
    return [ReasonCodeView(code=c.code, label=c.label, text_required=c.text_required) for c in catalogue.codes]


@router.get("/agencies", summary="The accepting agencies (受理机构), for the queue's agency filter")
async def agencies(request: Request, _: CurrentPrincipal) -> list[AgencyView]:
    return [AgencyView(code=a.code, name=a.name) for a in request.app.state.rules.districts.agencies]


def _view(request: Request, row: asyncpg.Record, today: date) -> CaseView:
    rules = request.app.state.rules
    return case_view(row, rules.districts, rules.calendar, request.app.state.enrollment_url, today)


def case_view(
    row: asyncpg.Record, districts: DistrictDirectory, calendar: WorkingCalendar, enrollment_url: str, today: date
) -> CaseView:
    agency = districts.agency(row["agency_code"])
    due, decided = row["due_on"], row["status"] == "decided"
    overdue = domain.is_overdue(due, decided, today)
    return CaseView(
        case_id=row["case_id"],
        application_id=row["application_id"],
        attempt=row["attempt"],
        status=row["status"],
        # An agency removed from the file still shows its code, so old cases stay readable.
        agency=AgencyView(code=row["agency_code"], name=agency.name if agency else row["agency_code"]),
        submitted_at=row["submitted_at"],
        opened_at=row["opened_at"],
        due_on=row["due_on"],
        overdue=overdue,
        due_working_days=calendar.working_days_between(local_date(row["submitted_at"]), due),
        working_days_left=0 if decided or overdue else calendar.working_days_between(today, due),
        working_days_late=calendar.working_days_between(due, today) if overdue else 0,
        applicant=_applicant(row),
        documents=[_document(d, row["application_id"], enrollment_url) for d in row["documents"]],
        decision=row["decision"],
        reasons=[ReasonView(**r) for r in row["reasons"]],
        reviewer_id=row["reviewer_id"],
        decided_at=row["decided_at"],
    )


def _applicant(row: asyncpg.Record) -> ApplicantFacts:
    erased = row["personal_data_erased_at"] is not None
    birth: date | None = row["birth_date"]
    return ApplicantFacts(
        applicant_id=row["applicant_id"],
        name=domain.ERASED_NAME if erased or row["applicant_name"] is None else row["applicant_name"],
        personal_data_erased=erased,
        id_number_masked=row["id_number_masked"],
        gender=row["gender"],
        birth_date=birth,
        age_at_submission=domain.age_on(birth, local_date(row["submitted_at"])) if birth else None,
        phone_masked=row["phone_masked"],
        household_kind=row["household_kind"],
        household_region_code=row["household_region_code"],
        residence_district_code=row["residence_district_code"],
        pension_tier=row["pension_tier"],
        medical_tier=row["medical_tier"],
    )


def _document(document: dict[str, Any], application_id: UUID, enrollment_url: str) -> DocumentLink:
    return DocumentLink(
        kind=document["kind"],
        content_type=document["content_type"],
        sha256=document["sha256"],
        url=document_url(enrollment_url, application_id, document["kind"]),
    )
