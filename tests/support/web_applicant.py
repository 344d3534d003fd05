"""The applicant's pages in a browser (tests/e2e/test_web_applicant.py): people set up through the
services' APIs (tests/support/applicant.py), staff with a phone and password to log in with on the
page, and the log-in form driven as a person drives it."""

from datetime import date
from typing import Any
from uuid import uuid4

import httpx

from tests.support.applicant import PASSWORD, Person, decided_application, texted_code
from tests.support.processes import ServiceProcess


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
    """`decided_application`, the decision known to enrollment."""
    person, application_id = decided_application(system, name, birth, male, decision)
    person.wait_for_status(application_id, str(decision["decision"]))
    return person, application_id


def notify_channel(system: dict[str, ServiceProcess], channel: str, notification: tuple[dict[str, str], bytes]) -> int:
    """A channel's signed notification delivered to payment as the channel sends it: its status."""
    headers, body = notification
    answer = httpx.post(
        f"{system['payment'].url}/v1/channels/{channel}/notifications", headers=headers, content=body, timeout=15
    )
    return answer.status_code


def yuan(fen: int) -> str:
    """As the pages write an amount (services/web/pages.py `yuan`)."""
    return f"{fen // 100:,}.{fen % 100:02d} 元"
