"""The year's tariff as the applicant chooses a tier (guide PART-5: 养老保险一档…五档, 医疗保险第五档):
what each tier costs a month, from the operator's tariff file (tariff.py), never a figure of the
page's own."""

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from kernel.auth import CurrentPrincipal
from kernel.web import PROBLEM_RESPONSES, problem_responses
from services.payment.routes import Service
from services.payment.tariff import Tariff

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


class TierAmount(BaseModel):
    tier: int = Field(description="The tier (档次): pension 1..5, medical 5.", examples=[3])
    monthly_fen: int = Field(description="What the tier costs a month, in integer fen (1 yuan = 100 fen).")


class TariffView(BaseModel):
    year: int = Field(description="The calendar year the amounts apply to.")
    pension: list[TierAmount] = Field(description="养老保险: every tier, lowest first.")
    medical: list[TierAmount] = Field(description="医疗保险: its only tier (the fifth).")
    source: str = Field(description="Where the figures come from, as the operator wrote it.")
    figures_are_examples: bool = Field(
        description="True while the operator has not yet set the year's official figures: show them as examples."
    )


def _view(tariff: Tariff) -> TariffView:
    return TariffView(
        year=tariff.year,
        pension=[TierAmount(tier=t, monthly_fen=f) for t, f in sorted(tariff.pension.items())],
        medical=[TierAmount(tier=t, monthly_fen=f) for t, f in sorted(tariff.medical.items())],
        source=tariff.source,
        figures_are_examples=tariff.figures_are_examples,
    )


@router.get(
    "/tariffs/{year}",
    summary="The year's monthly amount per insurance and tier (anyone signed in who uses payment)",
    responses=problem_responses(422),
)
async def tariff_of_year(
    year: Annotated[int, Path(ge=2000, le=2100, description="The year, e.g. 2027.")],
    svc: Service,
    _: CurrentPrincipal,
) -> TariffView:
    # 422 tariff_missing for a year the operator has not set (tariff.TariffBook.of_year).
    return _view(svc.rules.tariffs.of_year(year))
