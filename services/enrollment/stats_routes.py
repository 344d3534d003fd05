"""enrollment's dashboard route (issue 12): applications per day and district, and every
application by its current status. Aggregates only, for operators and reviewers: no person and
no application is named in the answer."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from contracts.reference import DistrictDirectory
from kernel.auth import Principal, require_role
from kernel.clock import CalendarWindow, today_in_changzhou
from kernel.web import PROBLEM_RESPONSES, DaysQuery, DayWindowView
from services.enrollment import stats
from services.enrollment.reference import region_name
from services.enrollment.routes import Service
from services.enrollment.status import ViewStatus

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

Staff = Annotated[Principal, require_role("operator", "reviewer")]


class DistrictView(BaseModel):
    code: str = Field(description="Administrative code (GB/T 2260) of the district of residence.", examples=["320402"])
    name: str = Field(description="Its name in Chinese.", examples=["天宁区"])


class DistrictCount(BaseModel):
    code: str = Field(description="District code, one of `districts`.", examples=["320402"])
    count: int = Field(description="Applications first submitted that day by residents of the district.")


class DayOfApplications(BaseModel):
    day: date = Field(description="A calendar day in Asia/Shanghai.")
    total: int = Field(description="Applications first submitted that day, all districts.")
    districts: list[DistrictCount] = Field(
        description="One entry per district of `districts`, in the same order; 0 when none."
    )


class StatusCount(BaseModel):
    status: ViewStatus = Field(description="Current status, as GET /v1/applications/{id} shows it.")
    count: int = Field(description="Applications in that status now (all time, not only the window).")


class ApplicationStats(DayWindowView):
    districts: list[DistrictView] = Field(
        description="Changzhou's districts of residence from the reference file, then any other district code "
        "that appears in the window's submissions (named from GB/T 2260, or its code)."
    )
    days: list[DayOfApplications] = Field(
        description="Every day of the window, oldest first, zero-filled. Only FIRST submissions count: a "
        "resubmission after a rejection is the same application and is not counted again."
    )
    submitted: int = Field(description="Applications first submitted within the window, all days and districts.")
    by_status: list[StatusCount] = Field(
        description="Every status (draft, submitted, under_review, approved, rejected, active) with its count, "
        "zero-filled."
    )


@router.get(
    "/stats/applications",
    summary="Dashboard: applications first submitted per day and district, and all applications by status",
    description="Operators and reviewers; aggregates only. 422 invalid_request for `days` outside 1..366.",
)
async def application_stats(
    request: Request,
    svc: Service,
    _: Staff,
    days: DaysQuery = 30,
) -> ApplicationStats:
    window = CalendarWindow(today_in_changzhou(), days)
    counts = await stats.first_submissions(svc.pool, window)
    by_status = await stats.by_status(svc.pool)
    directory: DistrictDirectory = request.app.state.enrollment_config.districts
    known = [DistrictView(code=d.code, name=d.name) for d in directory.districts]
    others = sorted({code for _, code in counts} - {d.code for d in known})
    districts = known + [DistrictView(code=code, name=region_name(code)) for code in others]
    day_views = [
        DayOfApplications(
            day=day,
            total=sum(counts.get((day, d.code), 0) for d in districts),
            districts=[DistrictCount(code=d.code, count=counts.get((day, d.code), 0)) for d in districts],
        )
        for day in window.all_days()
    ]
    return ApplicationStats(
        first_day=window.first_day,
        last_day=window.today,
        districts=districts,
        days=day_views,
        submitted=sum(v.total for v in day_views),
        by_status=[StatusCount(status=s, count=by_status[s]) for s in stats.STATUSES],
    )
