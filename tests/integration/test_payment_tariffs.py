"""The year's tariff as the applicant's page shows it (services/payment/tariff_routes.py): the
operator's file, tier by tier, in integer fen, and a refusal for a year nobody set."""

import tomllib
from pathlib import Path
from uuid import uuid4

from kernel.auth import Principal, Role
from tests.support.payment import Payment
from tests.support.tokens import bearer


def auth(role: Role) -> dict[str, str]:
    return bearer(Principal(uuid4(), role), 600)


TARIFFS = Path(__file__).resolve().parents[2] / "services" / "payment" / "tariffs"


async def test_the_amounts_are_the_operators_file_tier_by_tier(payment: Payment) -> None:
    answer = await payment.http.get("/v1/tariffs/2027", headers=auth("applicant"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    shipped = tomllib.loads((TARIFFS / "2027.toml").read_text(encoding="utf-8"))
    assert body["year"] == 2027 and body["figures_are_examples"] is shipped["figures_are_examples"]
    assert body["pension"] == [{"tier": int(t), "monthly_fen": f} for t, f in sorted(shipped["pension"].items())]
    assert body["medical"] == [{"tier": 5, "monthly_fen": shipped["medical"]["5"]}]
    assert all(type(t["monthly_fen"]) is int for t in body["pension"] + body["medical"])


async def test_a_year_without_a_tariff_is_refused_and_no_token_is_no_answer(payment: Payment) -> None:
    missing = await payment.http.get("/v1/tariffs/2031", headers=auth("operator"))
    assert missing.status_code == 422 and missing.json()["code"] == "tariff_missing"
    assert (await payment.http.get("/v1/tariffs/2027")).status_code == 401
    assert (await payment.http.get("/v1/tariffs/1999", headers=auth("operator"))).status_code == 422
