"""The applicant's pages in a browser (tests/e2e/test_web_applicant.py): people set up through the
services' APIs (tests/support/applicant.py), staff with a phone and password to log in with on the
page, and the log-in form driven as a person drives it."""

import re
from datetime import date
from typing import Any
from uuid import uuid4

import httpx
from playwright.sync_api import Page, expect

from tests.support.applicant import (
    PASSWORD,
    Person,
    decide,
    eventually,
    pending_case,
    staff,
    texted_code,
    upload_changzhou_documents,
)
from tests.support.processes import ServiceProcess

CHANGZHOU = {"household_kind": "changzhou", "household_region_code": "320402", "residence_district_code": "320411"}


def registered_only(system: dict[str, ServiceProcess]) -> tuple[str, str]:
    """An applicant account (phone proven by its texted code), not verified: (phone, user_id)."""
    phone = f"139{uuid4().int % 10**8:08d}"
    identity = httpx.Client(base_url=system["identity"].url, timeout=15)
    asked = identity.post("/v1/phone-codes", json={"phone": phone, "purpose": "register"})
    assert asked.status_code == 202, asked.text
    code = texted_code(system, phone)
    created = identity.post("/v1/users", json={"phone": phone, "password": PASSWORD, "code": code})
    assert created.status_code == 201, created.text
    return phone, str(created.json()["user_id"])


def decided_person(
    system: dict[str, ServiceProcess], name: str, birth: date, male: bool, decision: dict[str, Any]
) -> tuple[Person, str]:
    """A verified person whose application (pension 三档, medical 五档, Changzhou) was submitted and
    decided (`decision`: review's body, e.g. {"decision": "approved"}), the decision known to
    enrollment."""
    person = Person(system, name, birth, male=male)
    person.register_and_verify()
    application_id = person.apply(pension_tier=3, medical_tier=5, **CHANGZHOU)
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    reviewer = staff(system, "reviewer", agency="320411")
    case = pending_case(system, reviewer, application_id, attempt=1)
    decide(system, reviewer, case["case_id"], decision)
    person.wait_for_status(application_id, str(decision["decision"]))
    return person, application_id


def bills_of(system: dict[str, ServiceProcess], person: Person, count: int) -> dict[str, Any]:
    """The person's bills once `count` are listed (the account opens through Kafka)."""
    payment = httpx.Client(base_url=system["payment"].url, timeout=15)

    def listed() -> dict[str, Any] | None:
        answer = payment.get(f"/v1/insured/{person.user_id}/bills", headers=person.auth)
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view if len(view["bills"]) >= count else None

    return eventually(listed, f"{count} bills")


def notify_channel(system: dict[str, ServiceProcess], channel: str, notification: tuple[dict[str, str], bytes]) -> int:
    """A channel's signed notification delivered to payment as the channel sends it: its status."""
    headers, body = notification
    answer = httpx.post(
        f"{system['payment'].url}/v1/channels/{channel}/notifications", headers=headers, content=body, timeout=15
    )
    return answer.status_code


def log_in(page: Page, phone: str, password: str = PASSWORD, next_path: str = "") -> None:
    page.goto(f"/login?next={next_path}" if next_path else "/login")
    page.get_by_label("手机号码").fill(phone)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def yuan(fen: int) -> str:
    """As the pages write an amount (services/web/pages.py `yuan`)."""
    return f"{fen // 100:,}.{fen % 100:02d} 元"
