"""/dashboard: figures to look at, for operators and reviewers (a reviewer bound to an agency gets
that agency's decisions and queue, as review's API decides).

The three aggregate APIs are asked at once with the visitor's own token; a section whose service
does not answer says so and the others still show. Charts are SVG drawn on the server
(services/web/charts.py), each with the same figures as a table."""

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from kernel.web import correlation_id
from services.web.apis import ApiRefused, ApiUnavailable
from services.web.charts import Chart, LegendItem, Table, data_table, legend, render_columns, render_rows
from services.web.ops_views import (
    Figure,
    applications_chart,
    decisions_chart,
    overdue_chart,
    reasons_chart,
    settlement_charts,
    status_figures,
)
from services.web.pages import render
from services.web.session import Visitor, signed_in

router = APIRouter()

Staff = Annotated[Visitor, signed_in("operator", "reviewer")]
DAY_CHOICES = (7, 30, 90)
UNAVAILABLE = "暂时无法取得这部分数据，请稍后刷新。"
OPERATORS_ONLY = "缴费统计仅向运维人员开放。"
NOT_YOURS = "您的账号无权查看这部分数据。"


@dataclass(frozen=True)
class ChartView:
    """A chart as the template shows it: the picture, its legend and its table."""

    key: str
    svg: Markup
    legend: list[LegendItem]
    table: Table


@dataclass(frozen=True)
class Section:
    """A part of the dashboard; `charts` None: its figures are missing, `notice` says why."""

    title: str
    charts: list[ChartView] | None
    notice: str = ""


def _columns(chart: Chart, category_head: str) -> ChartView:
    return ChartView(chart.key, render_columns(chart), legend(chart), data_table(chart, category_head))


def _rows(chart: Chart, category_head: str) -> ChartView:
    return ChartView(chart.key, render_rows(chart), [], data_table(chart, category_head))


@dataclass(frozen=True)
class Answer:
    """A stats API's figures, or why there are none (the section says so)."""

    figures: Any
    notice: str


async def _stats(request: Request, visitor: Visitor, service: str, path: str, params: dict[str, int]) -> Answer:
    try:
        figures = await request.app.state.apis.json(
            service, "GET", path, token=visitor.bearer(), correlation_id=correlation_id(request), params=params
        )
    except ApiRefused:
        # web verified the token for this very request: a refusal here (401, 403) means this
        # service does not take it from this role (e.g. a token not addressed to it), not that
        # the session ended; the other sections still show.
        return Answer(None, NOT_YOURS)
    except ApiUnavailable:
        return Answer(None, UNAVAILABLE)
    return Answer(figures, "")


async def _settlements(request: Request, visitor: Visitor) -> Answer:
    # Money is the operators' business: payment serves these figures to them only.
    if visitor.role != "operator":
        return Answer(None, OPERATORS_ONLY)
    return await _stats(request, visitor, "payment", "/v1/stats/settlements", {"months": 12})


@router.get("/dashboard", include_in_schema=False)
async def dashboard(request: Request, visitor: Staff, days: Annotated[int, Query(ge=1, le=366)] = 30) -> Response:
    days = days if days in DAY_CHOICES else 30
    apps_answer, decisions_answer, settlements_answer = await asyncio.gather(
        _stats(request, visitor, "enrollment", "/v1/stats/applications", {"days": days}),
        _stats(request, visitor, "review", "/v1/stats/decisions", {"days": days}),
        _settlements(request, visitor),
    )
    applications, decisions, settlements = apps_answer.figures, decisions_answer.figures, settlements_answer.figures
    statuses: list[Figure] = status_figures(applications) if applications else []
    sections = [
        Section(
            "参保登记申请",
            [_columns(applications_chart(applications), "日期")] if applications else None,
            apps_answer.notice,
        ),
        Section(
            "审核",
            [
                _columns(decisions_chart(decisions), "日期"),
                _rows(reasons_chart(decisions), "原因"),
                _rows(overdue_chart(decisions), "受理机构"),
            ]
            if decisions
            else None,
            decisions_answer.notice,
        ),
        Section(
            "缴费",
            [_columns(chart, "月份") for chart in settlement_charts(settlements)] if settlements else None,
            settlements_answer.notice,
        ),
    ]
    return render(
        request,
        visitor,
        "dashboard/index.html",
        days=days,
        day_choices=DAY_CHOICES,
        applications=applications,
        decisions=decisions,
        settlements=settlements,
        statuses=statuses,
        sections=sections,
    )
