"""review's dashboard route (issue 12): decisions per day, rejection reasons, and the cases
overdue per accepting agency. Aggregates only, for operators and reviewers: no applicant and no
case is named in the answer. A reviewer bound to an agency gets that agency's figures, as the
queue shows them only its cases; operators and city-level reviewers get every agency's."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from contracts.reference import DistrictDirectory
from kernel.auth import Principal, require_role
from kernel.clock import CalendarWindow, today_in_changzhou
from kernel.web import PROBLEM_RESPONSES, DaysQuery, DayWindowView
from services.review import stats
from services.review.reasons import ReasonCatalogue
from services.review.routes import Service

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

Staff = Annotated[Principal, require_role("operator", "reviewer")]


class DayOfDecisions(BaseModel):
    day: date = Field(description="A calendar day in Asia/Shanghai.")
    approved: int = Field(description="Cases approved (审核通过) that day.")
    rejected: int = Field(description="Cases rejected (审核不通过) that day.")


class ReasonCount(BaseModel):
    code: str = Field(description="Reason code (services/review/reason_codes.toml).", examples=["documents_unreadable"])
    label: str = Field(description="Its Chinese label; the code itself for a code retired from the file.")
    count: int = Field(description="Rejections within the window that gave this reason (once per case).")


class AgencyQueue(BaseModel):
    agency_code: str = Field(description="Code of the accepting agency (受理机构).", examples=["320402"])
    agency_name: str = Field(description="Its name in Chinese; the code for an agency removed from the file.")
    pending: int = Field(description="Cases waiting for a decision now.")
    overdue: int = Field(
        description="Of those, cases past their due date (due_on, counted in working days, before `today`)."
    )


class DecisionStats(DayWindowView):
    today: date = Field(description="The day against which `overdue` was judged (Asia/Shanghai).")
    agency: str | None = Field(
        description="The agency the figures are limited to (a reviewer bound to one); null: every agency."
    )
    days: list[DayOfDecisions] = Field(description="Every day of the window, oldest first, zero-filled.")
    approved: int = Field(description="Approvals within the window.")
    rejected: int = Field(description="Rejections within the window.")
    rejection_reasons: list[ReasonCount] = Field(
        description="Every reason code of the catalogue in its order, zero-filled, then any other code that "
        "appears; a rejection may give several reasons, so these may add up to more than `rejected`."
    )
    overdue: list[AgencyQueue] = Field(
        description="Every accepting agency (of `agency` only, when set), zero-filled, then any other agency "
        "code with pending cases."
    )


@router.get(
    "/stats/decisions",
    summary="Dashboard: approvals and rejections per day, rejection reasons, overdue cases per agency",
    description="Operators and reviewers; aggregates only. 422 invalid_request for `days` outside 1..366.",
)
async def decision_stats(
    request: Request,
    svc: Service,
    principal: Staff,
    days: DaysQuery = 30,
) -> DecisionStats:
    today = today_in_changzhou()
    window = CalendarWindow(today, days)
    scope = principal.scope if principal.role == "reviewer" else None  # as the queue's (routes._scope)
    decided = await stats.decisions_by_day(svc.pool, window, scope)
    reasons = await stats.rejection_reasons(svc.pool, window, scope)
    queues = await stats.queue_by_agency(svc.pool, today, scope)
    catalogue: ReasonCatalogue = request.app.state.rules.reasons
    districts: DistrictDirectory = request.app.state.rules.districts
    day_views = [
        DayOfDecisions(day=d, approved=decided.get(d, (0, 0))[0], rejected=decided.get(d, (0, 0))[1])
        for d in window.all_days()
    ]
    labelled = [ReasonCount(code=c.code, label=c.label, count=reasons.get(c.code, 0)) for c in catalogue.codes]
    retired = [
        ReasonCount(code=c, label=c, count=reasons[c]) for c in sorted(set(reasons) - {c.code for c in catalogue.codes})
    ]
    agencies = [a.code for a in districts.agencies if scope is None or a.code == scope]
    agencies += sorted(set(queues) - set(agencies))
    overdue = []
    for code in agencies:
        agency = districts.agency(code)
        pending, late = queues.get(code, (0, 0))
        overdue.append(
            AgencyQueue(agency_code=code, agency_name=agency.name if agency else code, pending=pending, overdue=late)
        )
    return DecisionStats(
        first_day=window.first_day,
        last_day=today,
        today=today,
        agency=scope,
        days=day_views,
        approved=sum(v.approved for v in day_views),
        rejected=sum(v.rejected for v in day_views),
        rejection_reasons=labelled + retired,
        overdue=overdue,
    )
