"""review's HTTP routes for the reviewer console: the case queue and decisions."""

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from kernel.auth import CurrentPrincipal, Principal, require_role
from kernel.web import PROBLEM_RESPONSES, StrictBody
from services.review import domain
from services.review.projections import StatusFilter
from services.review.service import ReviewService, today_in_changzhou
from services.review.views import AgencyView, CaseList, CaseView, case_view

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


def service(request: Request) -> ReviewService:
    svc: ReviewService = request.app.state.review
    return svc


Service = Annotated[ReviewService, Depends(service)]


def _scope(principal: Principal) -> str | None:
    """The agency whose cases this principal may see and decide; None: every agency's. Only a
    reviewer carries one (kernel.auth refuses it on anyone else); operators see all."""
    return principal.agency_code if principal.role == "reviewer" else None


def _view(request: Request, row: asyncpg.Record, today: date) -> CaseView:
    return case_view(row, request.app.state.rules.agencies, request.app.state.enrollment_url, today)


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
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CaseList:
    today = today_in_changzhou()
    scope = _scope(principal)
    rows = await svc.list_cases(status, agency, limit, offset, scope=scope)
    return CaseList(status=status, agency=scope or agency, today=today, cases=[_view(request, r, today) for r in rows])


@router.get("/cases/{case_id}", summary="One review case")
async def get_case(case_id: UUID, request: Request, svc: Service, principal: Staff) -> CaseView:
    return _view(request, await svc.case_row(case_id, _scope(principal)), today_in_changzhou())


@router.post("/cases/{case_id}/decision", status_code=201, summary="Decide: 审核通过 or 审核不通过 with reasons")
async def decide(case_id: UUID, body: DecisionIn, request: Request, svc: Service, reviewer: Reviewer) -> CaseView:
    reasons = [domain.ReasonInput(code=r.code, text=r.text) for r in body.reasons]
    scope = _scope(reviewer)
    await svc.decide(case_id, body.decision, reasons, reviewer.user_id, scope=scope)
    return _view(request, await svc.case_row(case_id, scope), today_in_changzhou())


@router.get("/reason-codes", summary="The reasons a reviewer may give for 审核不通过")
async def reason_codes(request: Request, _: CurrentPrincipal) -> list[ReasonCodeView]:
    catalogue = request.app.state.rules.reasons
    return [ReasonCodeView(code=c.code, label=c.label, text_required=c.text_required) for c in catalogue.codes]


@router.get("/agencies", summary="The accepting agencies (受理机构), for the queue's agency filter")
async def agencies(request: Request, _: CurrentPrincipal) -> list[AgencyView]:
    return [AgencyView(code=a.code, name=a.name) for a in request.app.state.rules.agencies.agencies]
