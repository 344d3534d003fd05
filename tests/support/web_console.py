"""The reviewer console in a browser (tests/e2e/test_web_console.py): staff members who log in
through the page, applicants with a submitted application, and a late case.

Staff are made as tests/support/applicant.py `staff()` makes them (`flexctl staff add`, the
password on stdin), but the phone and password are kept: the browser logs in with them."""

import asyncio
import concurrent.futures
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import uuid4

import asyncpg
import httpx
from playwright.sync_api import Page

from tests.support import web
from tests.support.applicant import (
    PASSWORD,
    Person,
    eventually,
    login,
    pending_case,
    staff_phone,
    upload_changzhou_documents,
)
from tests.support.infra import admin_url_of
from tests.support.processes import ServiceProcess

System = dict[str, ServiceProcess]


@dataclass(frozen=True)
class StaffMember:
    phone: str
    password: str
    headers: dict[str, str]  # the bearer header, for API-level checks and set-up


def staff_member(system: System, role: str, agency: str | None = None, number: str | None = None) -> StaffMember:
    """A staff account; `number`: the ID number it is linked to (an applicant's own, to test
    own_case), else a random one (one staff account per number)."""
    phone = staff_phone(system, role, agency, number)
    identity = httpx.Client(base_url=system["identity"].url, timeout=15)
    token = eventually(lambda: login(identity, phone), "staff login")
    return StaffMember(phone, PASSWORD, {"Authorization": f"Bearer {token}"})


@dataclass(frozen=True)
class Submitted:
    person: Person
    application_id: str


def verified_person(system: System, name: str, birth: date | None = None) -> Person:
    """A verified applicant; born on a day of her own unless told (one birth day for all made
    their random ID numbers collide now and then: identity then refuses the second)."""
    born = birth or date(1980, 1, 1) + timedelta(days=uuid4().int % 7000)
    person = Person(system, name, born, male=False)
    person.register_and_verify()
    return person


def submitted_application(system: System, person: Person, district: str) -> Submitted:
    """The verified person, of Changzhou and living in `district`, submits an application with
    every document (PNG, JPEG and a PDF)."""
    application_id = person.apply(
        pension_tier=3, medical_tier=5, household_kind="changzhou",
        household_region_code="320402", residence_district_code=district,
    )  # fmt: skip
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    return Submitted(person, application_id)


def case_of(system: System, reviewer: StaffMember, submitted: Submitted) -> str:
    """The review case of the first submission, once review has opened it (through Kafka)."""
    return str(pending_case(system, reviewer.headers, submitted.application_id, attempt=1)["case_id"])


def log_in(page: Page, member: StaffMember, then: str = "/console") -> None:
    """Through /login as a person would: the form, then the page it leads to (a reviewer's home
    is the console; anyone else is sent there with ?next=)."""
    web.log_in(page, member.phone, member.password, then)


def make_overdue(system: System, case_id: str, days: int = 14) -> None:
    """Move the case's submission and due date `days` back in review's queue table, as the
    administrator: review has no clock or deadline setting that makes a case late without
    waiting days (REVIEW_DUE_WORKING_DAYS is at least 1, counted from the submission day).
    Only the read model moves; `overdue` is still review's own judgement of due date vs today."""
    review = system["review"]
    schema = review.env.get("SCHEMA_NAME") or review.name

    async def move() -> str:
        conn = await asyncpg.connect(admin_url_of(review.env["DATABASE_URL"]))
        try:
            status: str = await conn.execute(
                f'UPDATE "{schema}".cases SET due_on = due_on - $2::int, '
                "submitted_at = submitted_at - make_interval(days => $2::int) WHERE case_id = $1::uuid",
                case_id,
                days,
            )
            return status
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        assert thread.submit(asyncio.run, move()).result() == "UPDATE 1"
