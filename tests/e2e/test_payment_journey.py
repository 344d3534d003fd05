"""Accounts and bills end to end, every service a real process over the real broker and database:
apply → submit → approve (review) → payment opens the contribution account with the chosen tiers
→ `flexctl payment issue-bills` twice issues the month's bill once → the person reads it and
changes tiers from the next month; nobody else reads it."""

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.payment.domain import Month
from services.payment.tariff import TariffBook
from tests.support.applicant import (
    Person,
    decide,
    eventually,
    pending_case,
    services,
    staff,
    upload_changzhou_documents,
)
from tests.support.infra import group_prefix
from tests.support.processes import ROOT, ServiceProcess

TARIFFS = TariffBook.from_folder(ROOT / "services" / "payment" / "tariffs")


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    env = {**e2e_env, "CONSUMER_GROUP_PREFIX": group_prefix("e2e-pay"), "BATCH_WAIT_MS": "10"}
    system = services(env, log_dir, ("identity", "enrollment", "review", "payment"))
    started: list[ServiceProcess] = []
    try:
        for service in system.values():
            started.append(service.start())
        yield system
    finally:
        for service in started:
            service.stop()


def issue_bills(system: dict[str, ServiceProcess]) -> str:
    env = {**system["payment"].env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "ops.flexctl", "payment", "issue-bills"], cwd=ROOT, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def cell(output: str, label: str) -> str:
    [line] = [line for line in output.splitlines() if label in line]
    return line.replace("│", " ").split()[-1]


def test_approval_opens_the_account_and_the_months_bill_is_issued_once(system: dict[str, ServiceProcess]) -> None:
    person = Person(system, "周敏", date(1991, 4, 12), male=False)
    person.register_and_verify()
    application_id = person.apply(
        pension_tier=2, medical_tier=5, household_kind="changzhou",
        household_region_code="320402", residence_district_code="320411",
    )  # fmt: skip
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    reviewer = staff(system, "reviewer", agency="320411")
    case = pending_case(system, reviewer, application_id, attempt=1)
    payment = httpx.Client(base_url=system["payment"].url, timeout=15)
    bills_url = f"/v1/insured/{person.user_id}/bills"
    early = payment.get(bills_url, headers=person.auth)
    assert early.status_code == 404 and early.json()["code"] == "account_not_found"  # not approved yet
    decide(system, reviewer, case["case_id"], {"decision": "approved"})

    def opened() -> dict[str, Any] | None:
        answer = payment.get(bills_url, headers=person.auth)
        return answer.json() if answer.status_code == 200 else None

    view = eventually(opened, "payment to open the account")
    month = Month.at(datetime.now(UTC))
    assert view["account"]["pension_tier"] == 2 and view["account"]["medical_tier"] == 5
    assert view["account"]["application_id"] == application_id and view["bills"] == []
    assert view["account"]["first_period"] == str(month)

    # The session's topics may hold other tests' approvals too: count this person's bills.
    first = issue_bills(system)
    assert int(cell(first, "bills issued now")) >= 1, first
    [bill] = payment.get(bills_url, headers=person.auth).json()["bills"]
    issue_bills(system)
    assert payment.get(bills_url, headers=person.auth).json()["bills"] == [bill]  # twice: once
    tariff = TARIFFS.of_year(month.year)
    assert bill["period"] == str(month) and bill["status"] == "due"
    assert bill["amount_fen"] == tariff.pension_fen(2) + tariff.medical_fen(5)

    operator = staff(system, "operator")
    assert payment.get(bills_url, headers=operator).json()["bills"] == [bill]
    refused = payment.get(bills_url, headers=reviewer)
    # A reviewer's token is not for payment at all (its audience: identity, enrollment, review).
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"

    changed = payment.put(f"/v1/insured/{person.user_id}/tiers", json={"pension_tier": 4, "medical_tier": 5},
                          headers=person.auth)  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["tiers_from"] == str(month.next()) and changed.json()["pension_tier"] == 4
