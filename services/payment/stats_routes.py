"""payment's dashboard route (issue 12): settlements per channel and month. Aggregates only,
for operators and reviewers: no payer, person or bill is named in the answer."""

from typing import Annotated, get_args

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from contracts.events.payment import Channel
from kernel.auth import Principal, require_role
from kernel.clock import today_in_changzhou
from kernel.web import PROBLEM_RESPONSES
from services.payment import stats
from services.payment.domain import Month
from services.payment.domain import months as months_between
from services.payment.routes import Service

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

Staff = Annotated[Principal, require_role("operator", "reviewer")]

CHANNELS: tuple[Channel, ...] = get_args(Channel)


class ChannelFigures(BaseModel):
    channel: Channel = Field(description="The channel the money came through.")
    count: int = Field(description="Settlements (bills paid).")
    amount_fen: int = Field(description="Their total, integer fen.")


class MonthOfSettlements(BaseModel):
    month: str = Field(description="A calendar month in Asia/Shanghai, YYYY-MM.", examples=["2026-03"])
    count: int = Field(description="Settlements that month, all channels.")
    amount_fen: int = Field(description="Their total, integer fen.")
    channels: list[ChannelFigures] = Field(
        description="One entry per channel of `channels`, in that order; 0 when none."
    )


class SettlementStats(BaseModel):
    time_zone: str = Field(default="Asia/Shanghai", description="The calendar the months are counted in.")
    first_month: str = Field(description="The first month of the window, YYYY-MM.")
    last_month: str = Field(description="The last month of the window: the current one in Asia/Shanghai, YYYY-MM.")
    channels: list[Channel] = Field(
        description="Every channel: wechat, alipay, unionpay_pos, bank_counter, bank_withholding."
    )
    months: list[MonthOfSettlements] = Field(
        description="Every month of the window, oldest first, zero-filled. Overpayments (money for a bill "
        "already paid, owed back) are not settlements and are not counted."
    )
    totals: list[ChannelFigures] = Field(description="Per channel, the whole window.")
    count: int = Field(description="Settlements within the window, all channels.")
    amount_fen: int = Field(description="Their total, integer fen.")


@router.get(
    "/stats/settlements",
    summary="Dashboard: settlements (count and amount in fen) per channel and month",
    description="Operators and reviewers; aggregates only. 422 invalid_request for `months` outside 1..120.",
)
async def settlement_stats(
    svc: Service,
    _: Staff,
    months: Annotated[int, Query(ge=1, le=120, description="How many months, the current one included.")] = 12,
) -> SettlementStats:
    last = Month.of(today_in_changzhou())
    first = last
    for _n in range(months - 1):
        first = Month(first.year - 1, 12) if first.month == 1 else Month(first.year, first.month - 1)
    found = await stats.settlements(svc.pool, first, last)
    month_views = []
    for month in months_between(first, last):
        figures = [
            ChannelFigures(
                channel=c, count=found.get((str(month), c), (0, 0))[0], amount_fen=found.get((str(month), c), (0, 0))[1]
            )
            for c in CHANNELS
        ]
        month_views.append(
            MonthOfSettlements(
                month=str(month),
                count=sum(f.count for f in figures),
                amount_fen=sum(f.amount_fen for f in figures),
                channels=figures,
            )
        )
    totals = [
        ChannelFigures(
            channel=c,
            count=sum(m.channels[i].count for m in month_views),
            amount_fen=sum(m.channels[i].amount_fen for m in month_views),
        )
        for i, c in enumerate(CHANNELS)
    ]
    return SettlementStats(
        first_month=str(first),
        last_month=str(last),
        channels=list(CHANNELS),
        months=month_views,
        totals=totals,
        count=sum(t.count for t in totals),
        amount_fen=sum(t.amount_fen for t in totals),
    )
