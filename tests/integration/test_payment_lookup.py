"""Paying for another person (services/payment/README.md, "Paying for another person"): payment
in-process with a real identity in-process, on the real database and broker. POST /v1/bills/lookup
finds a verified person's unpaid bills by ID number and name through identity's match question and
shows nothing else of them; a wrong name, an unknown number and a person without an account get one
and the same answer, no sooner than the others."""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from kernel.auth import Principal, Role
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import ServiceRuntime
from services.payment.people import PeopleDirectory, resident_id_shape
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings
from tests.support.identity import Person, RunningIdentity
from tests.support.payment import COUNTER_SECRET, approve_and_bill, bank_counter, payment_with_identity
from tests.support.people import id_number
from tests.support.tokens import bearer

FLOOR = 0.25  # payment_lookup_min_seconds in these tests
BILL_FIELDS = {"bill_id", "period", "amount_fen", "due_on", "status"}


@dataclass
class Lookup:
    identity: RunningIdentity
    app: FastAPI
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    service: PaymentService
    settings: PaymentSettings

    def auth(self, role: Role = "applicant", user_id: UUID | None = None) -> dict[str, str]:
        return bearer(Principal(user_id or uuid4(), role), 600)

    async def ask(self, number: str, name: str, headers: dict[str, str] | None = None) -> httpx.Response:
        body = {"id_number": number, "name": name}
        return await self.http.post("/v1/bills/lookup", json=body, headers=self.auth() if headers is None else headers)

    def people(self, **settings: Any) -> PeopleDirectory:
        merged = self.settings.model_copy(update=settings)
        return PeopleDirectory(merged, transport=httpx.ASGITransport(app=self.identity.app))


@pytest.fixture
async def lookup(schema: str) -> AsyncIterator[Lookup]:
    async with payment_with_identity(
        schema, "lookup", payment_lookup_min_seconds=FLOOR, payment_bank_counter_secret=SecretStr(COUNTER_SECRET)
    ) as running:
        yield Lookup(running.identity, running.app, running.runtime, running.http, running.service, running.settings)


async def open_billed_account(lookup: Lookup, person: UUID, months_back: int) -> list[dict[str, Any]]:
    """The person approved `months_back` months ago, with bills up to this month, oldest first."""
    await approve_and_bill(lookup.service, person, months_back)
    answer = await lookup.http.get(f"/v1/insured/{person}/bills", headers=lookup.auth("operator"))
    assert answer.status_code == 200, answer.text
    bills: list[dict[str, Any]] = answer.json()["bills"]
    assert len(bills) >= months_back + 1
    return bills


async def pay(lookup: Lookup, bill: dict[str, Any]) -> None:
    headers, body = bank_counter(bill["bill_id"], bill["amount_fen"], f"counter-{uuid4().hex}")
    answer = await lookup.http.post("/v1/channels/bank_counter/notifications", headers=headers, content=body)
    assert answer.status_code == 200, answer.text


async def timed(lookup: Lookup, number: str, name: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = await lookup.ask(number, name)
    return answer, time.monotonic() - started


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and any("\u4e00" <= c <= "\u9fff" for c in body["detail"])
    return body


async def verified(lookup: Lookup, name: str) -> tuple[Person, str]:
    person = await lookup.identity.person(name=name)
    assert person.id_number is not None
    return person, person.id_number


# --- the cases ---------------------------------------------------------------------------------


async def test_a_payer_gets_the_persons_unpaid_bills_and_nothing_else_of_them(lookup: Lookup) -> None:
    person, number = await verified(lookup, "周七")
    bills = await open_billed_account(lookup, person.user_id, months_back=2)
    await pay(lookup, bills[0])
    unpaid = bills[1:]

    answer, took = await timed(lookup, number, "周七")  # by a logged-in applicant who is someone else
    assert answer.status_code == 200, answer.text
    assert took >= FLOOR
    body = answer.json()
    assert set(body) == {"bills", "amount_due_fen"}
    assert all(set(bill) == BILL_FIELDS for bill in body["bills"])
    expected = [{name: bill[name] for name in BILL_FIELDS} for bill in unpaid]
    assert body["bills"] == expected  # the unpaid ones, oldest first: the paid one is not offered again
    assert body["amount_due_fen"] == sum(bill["amount_fen"] for bill in unpaid) > 0
    assert {bill["status"] for bill in body["bills"]} <= {"due", "overdue"}
    for secret in ("周七", number, str(person.user_id), person.phone, person.phone[-8:], "account"):
        assert secret not in answer.text

    # As people type it: the check character in lower case, blanks around the name.
    typed = await lookup.ask(number.lower(), " 周七 ", headers=lookup.auth("operator"))
    assert typed.status_code == 200 and typed.json() == body


async def test_a_wrong_name_and_an_unknown_number_get_the_same_answer(lookup: Lookup) -> None:
    person, number = await verified(lookup, "吴八")
    await open_billed_account(lookup, person.user_id, months_back=0)
    _, without_account = await verified(lookup, "郑九")  # verified, never approved: nothing to pay
    unknown = id_number(date(1980, 2, 29), seq=901)
    assert resident_id_shape(unknown) == unknown  # a well-formed number nobody holds

    found, _ = await timed(lookup, number, "吴八")
    assert found.status_code == 200 and len(found.json()["bills"]) >= 1
    answers = [
        await timed(lookup, number, "吴九"),  # the person's number, another name
        await timed(lookup, unknown, "吴八"),  # a number nobody holds
        await timed(lookup, without_account, "郑九"),  # the right pair, but no contribution account
    ]
    bodies = [problem(answer, 404, "person_not_found") for answer, _ in answers]
    assert bodies[0] == bodies[1] == bodies[2]
    assert len({answer.headers["content-type"] for answer, _ in answers}) == 1
    assert all(took >= FLOOR for _, took in answers)  # no answer is quicker than the floor


async def test_refusals_are_problems_with_stable_codes(lookup: Lookup) -> None:
    person, number = await verified(lookup, "冯十")
    anonymous = await lookup.ask(number, "冯十", headers={})
    assert anonymous.status_code == 401
    # A reviewer's token does not name payment in its `aud` (kernel.auth.AUDIENCES).
    problem(await lookup.ask(number, "冯十", headers=lookup.auth("reviewer")), 401, "invalid_token")
    broken = number[:-1] + ("0" if number[-1] != "0" else "1")  # the check character no longer holds
    for malformed in (broken, "12345", "32040219900101001", "abcdefghijklmnopqr"):
        problem(await lookup.ask(malformed, "冯十"), 422, "invalid_id_number")
    assert (await lookup.ask(number, "冯十")).status_code == 404  # a valid pair with no account yet

    # identity refusing payment's token is no answer about the person: 503, never a 404.
    state = lookup.app.state
    own = state.payment_people
    state.payment_people = lookup.people(payment_identity_match_token=SecretStr("not-payments-token"))
    try:
        problem(await lookup.ask(number, "冯十"), 503, "identity_unavailable")
    finally:
        await state.payment_people.aclose()
        state.payment_people = own
    assert (await lookup.ask(person.id_number or "", "冯十")).status_code == 404  # the own client again
