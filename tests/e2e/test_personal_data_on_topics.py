"""No personal data in clear on any topic (docs/personal-data.md): after a journey of its own, and
after the other tests of the session (this module runs last of the end-to-end tests), every
record of every topic of the session (its TOPIC_PREFIX: all `*.events` and `*.dlq`, the ones
tests made under it too) is searched, raw bytes of key, value and headers, for a full mainland
mobile number, an 18-character ID number, and the names, birth dates and numbers of the test people."""

import asyncio
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

from tests.support.applicant import (
    PEOPLE,
    Person,
    decide,
    pending_case,
    running_system,
    sms_for,
    staff,
    upload_changzhou_documents,
)
from tests.support.infra import TOPIC_PREFIX
from tests.support.personal import clear_findings, read_all, sealed_of, session_topics
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    with running_system(e2e_env, log_dir, "e2e-scan") as system:
        yield system


def journey(system: dict[str, ServiceProcess]) -> Person:
    """Register, verify, apply, submit, a rejection with its SMS, a resubmission and the approval."""
    person = Person(system, "柏青岚", date(1983, 7, 9), male=False)
    person.register_and_verify()
    application_id = person.apply(
        pension_tier=4, medical_tier=5, household_kind="changzhou",
        household_region_code="320404", residence_district_code="320404",
    )  # fmt: skip
    upload_changzhou_documents(person, application_id)
    person.submit(application_id)
    reviewer, operator = staff(system, "reviewer"), staff(system, "operator")
    first = pending_case(system, reviewer, application_id, attempt=1)
    assert first["applicant"]["name"] == person.name  # review could open it: sealed is not lost
    reason = {"code": "documents_unreadable", "text": "户口簿本人页照片模糊"}
    decide(system, reviewer, first["case_id"], {"decision": "rejected", "reasons": [reason]})
    sms_for(system, operator, person.user_id, 1)
    person.wait_for_status(application_id, "rejected", notified=True)
    person.submit(application_id)
    second = pending_case(system, reviewer, application_id, attempt=2)
    decide(system, reviewer, second["case_id"], {"decision": "approved"})
    sms_for(system, operator, person.user_id, 2)
    person.wait_for_status(application_id, "approved", notified=True)
    return person


def test_no_topic_of_the_session_holds_personal_data_in_clear(system: dict[str, ServiceProcess]) -> None:
    person = journey(system)
    topics = asyncio.run(session_topics(TOPIC_PREFIX))
    assert {f"{TOPIC_PREFIX}{name}.events" for name in ("identity", "enrollment", "review", "notify")} <= set(topics)
    assert any(t.endswith(".dlq") for t in topics)
    messages = asyncio.run(read_all(topics))
    secrets = sorted({value for p in PEOPLE for value in p.personal_data})
    assert person.name in secrets and len(messages) >= 10

    leaks = [f"{m.where()}: {finding}" for m in messages for finding in clear_findings(m.raw, secrets)]
    assert leaks == [], "\n".join(leaks[:50])
    # One-time codes never travel on a topic (identity asks notify over HTTP): no code of the session
    # anywhere, as a number of its own (not inside a longer one, nor a timestamp's fraction).
    codes = sorted({code for p in PEOPLE for code in p.codes})
    assert person.codes and codes
    code_pattern = re.compile(rb"(?<![0-9.])(?:" + b"|".join(c.encode() for c in codes) + rb")(?![0-9])")
    assert [m.where() for m in messages if code_pattern.search(m.raw)] == []
    # the scan is not blind: this journey's people data is on the topics, sealed
    assert len(sealed_of(messages, UUID(person.user_id))) >= 4  # registered, verified, two submissions
