"""Crash recovery, end to end: services killed with SIGKILL at bad moments and started again as new
processes with the same settings (same database, same consumer groups: they resume from their
committed offsets), every service a real process over the real broker and database.

What must survive: exactly one SMS per decision (notify down while the reviewer decides; notify
killed right after a send; notify killed between the provider's acceptance and recording it), the
application status with each fact once (enrollment down while the case is opened and decided), and
exactly one review case per submission (review killed while opening the case, and right after).

The worst moments are made reproducible with a hold: a trigger that makes a service's statement
wait inside its transaction until the test has killed the service."""

import asyncio
import io
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pypdf import PdfReader

from contracts.topics import DLQ_TOPICS, EVENT_TOPICS
from tests.support.applicant import (
    Person,
    decide,
    eventually,
    pending_case,
    services,
    sms_for,
    staff,
    upload_changzhou_documents,
)
from tests.support.crash import (
    await_takeover,
    crash,
    group,
    group_members,
    hold,
    published,
    restart,
    sql,
    stored_events,
)
from tests.support.infra import (
    KAFKA_ADMIN,
    TOPIC_PREFIX,
    allow_topics,
    create_topics,
    group_prefix,
)
from tests.support.processes import ServiceProcess

SERVICES = ("identity", "enrollment", "review", "notify")
# notify's sender at a brisk pace, and a short lease, so that a message a killed sender left in
# `sending` is taken over (and looked up at the provider) within seconds rather than a minute.
BRISK_NOTIFY = {
    "NOTIFY_SENDER_POLL_SECONDS": "0.2",
    "NOTIFY_SEND_TIMEOUT_SECONDS": "1",
    "NOTIFY_SENDING_LEASE_SECONDS": "3",
}
CHANGZHOU = {
    "pension_tier": 3,
    "medical_tier": 5,
    "household_kind": "changzhou",
    "household_region_code": "320402",
    "residence_district_code": "320411",
}


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    """The four services on topics of their own: exact counts ("one case", "one SmsSent") must not
    see another test session's services, whose fresh consumer groups would read the shared test
    topics from the beginning, open cases and text decisions of this module too."""
    run = f"crash-{uuid4().hex[:8]}"
    topic_prefix = f"{TOPIC_PREFIX}{run}."
    topics = [f"{topic_prefix}{name}" for name in (*EVENT_TOPICS, *DLQ_TOPICS)]
    asyncio.run(create_topics(topics))
    allow_topics(topic_prefix)
    env = {
        **e2e_env,
        "TOPIC_PREFIX": topic_prefix,
        "CONSUMER_GROUP_PREFIX": group_prefix(run),
        "BATCH_WAIT_MS": "10",
        **BRISK_NOTIFY,
    }
    system = services(env, log_dir, SERVICES)
    try:
        for service in system.values():
            service.start()
        yield system
    finally:
        for service in system.values():
            service.stop()
        asyncio.run(delete_topics(topics))


async def delete_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


@pytest.fixture(autouse=True)
def every_service_up(system: dict[str, ServiceProcess]) -> None:
    """Each test begins with the whole system running, even after a test that failed mid-crash."""
    for service in system.values():
        if service.process is None or service.process.poll() is not None:
            service.start()


# --- the applicant's side ------------------------------------------------------------------------------


def ready_to_submit(system: dict[str, ServiceProcess], name: str, birth: date, male: bool) -> tuple[Person, str]:
    person = Person(system, name, birth, male=male)
    person.register_and_verify()
    application_id = person.apply(**CHANGZHOU)
    upload_changzhou_documents(person, application_id)
    return person, application_id


def submitted(system: dict[str, ServiceProcess], name: str, birth: date, male: bool) -> tuple[Person, str]:
    person, application_id = ready_to_submit(system, name, birth, male)
    person.submit(application_id)
    return person, application_id


def sms_log(system: dict[str, ServiceProcess], operator: dict[str, str], user_id: str) -> list[dict[str, Any]]:
    """Every message to the person, whatever its state."""
    answer = httpx.get(f"{system['notify'].url}/v1/sms", params={"recipient_id": user_id}, headers=operator, timeout=15)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def sink(system: dict[str, ServiceProcess], operator: dict[str, str], out_id: str) -> list[dict[str, Any]]:
    """What the local sink "provider" received for this out-id: one row per send, duplicates too."""
    answer = httpx.get(f"{system['notify'].url}/v1/sms/sink", params={"out_id": out_id}, headers=operator, timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == len(answer.json()["items"])
    return answer.json()["items"]  # type: ignore[no-any-return]


def timeline_kinds(view: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in view["timeline"]]


# --- the tests ----------------------------------------------------------------------------------------------


def test_exactly_one_sms_per_decision_through_notify_crashes(system: dict[str, ServiceProcess]) -> None:
    person, application_id = submitted(system, "林芳", date(1992, 3, 14), male=False)
    reviewer, operator = staff(system, "reviewer"), staff(system, "operator")
    case = pending_case(system, reviewer, application_id, attempt=1)
    notify, sms_group = system["notify"], group(system, "notify", "sms")

    # notify dies; the reviewer decides while it is down.
    _, before_first_crash = group_members(sms_group)
    crash(notify)
    decide(system, reviewer, case["case_id"], {"decision": "approved"})
    eventually(lambda: published(system, "review", "ReviewDecided", application_id), "ReviewDecided on the topic")
    assert not sql(system, "SELECT 1 FROM notify.sms_messages WHERE recipient_id = $1", person.user_id)

    # A new notify resumes from the committed offsets: the decision is texted, once.
    restart(notify)
    [sms] = sms_for(system, operator, person.user_id, 1)
    # ... and dies again right after the send, before anything else: no graceful anything.
    _, before_second_crash = group_members(sms_group)
    crash(notify)
    assert "审核通过" in sms["text"] and sms["attempts"] == 1
    in_sink = sql(system, "SELECT count(*) AS n FROM notify.sms_sink WHERE out_id = $1", sms["sms_id"])
    assert in_sink[0]["n"] == 1, "one send reached the provider"

    restart(notify)
    await_takeover(sms_group, before_first_crash | before_second_crash)
    time.sleep(2)  # ten rounds of the sender (NOTIFY_SENDER_POLL_SECONDS=0.2)
    [again] = sms_log(system, operator, person.user_id)
    assert (again["sms_id"], again["state"], again["attempts"]) == (sms["sms_id"], "sent", 1), again
    [received] = sink(system, operator, sms["sms_id"])
    assert received["text"] == sms["text"] and again["provider_message_id"] == f"local-{received['id']}"
    assert stored_events(system, "notify", "SmsSent", "sms_id", sms["sms_id"]) == 1

    view = person.wait_for_status(application_id, "approved", notified=True)
    assert timeline_kinds(view).count("sms_sent") == 1, timeline_kinds(view)


def test_a_send_not_yet_recorded_when_notify_dies_is_looked_up_not_sent_again(
    system: dict[str, ServiceProcess],
) -> None:
    """The worst moment: the provider accepted the message, notify dies before recording `sent`.

    A trigger holds notify's "sending -> sent" UPDATE (for this applicant only) until the test has
    killed the process; the transaction then dies with its connection. The new notify must take
    the message over after its lease, find it at the provider by its out-id, and record it `sent`
    without sending it a second time."""
    person, application_id = submitted(system, "赵敏", date(1988, 7, 9), male=False)
    reviewer, operator = staff(system, "reviewer"), staff(system, "operator")
    case = pending_case(system, reviewer, application_id, attempt=1)
    notify = system["notify"]
    sending_to_sent = "OLD.state = 'sending' AND NEW.state = 'sent'"
    with hold(system, "notify.sms_messages", "UPDATE", sending_to_sent, "recipient_id", person.user_id) as waiting:
        decide(system, reviewer, case["case_id"], {"decision": "approved"})

        def handed_over() -> list[asyncpg.Record]:
            return sql(
                system,
                "SELECT m.sms_id, s.id FROM notify.sms_messages m JOIN notify.sms_sink s ON s.out_id = m.sms_id::text "
                "WHERE m.recipient_id = $1",
                person.user_id,
            )

        [(sms_id, sink_id)] = eventually(handed_over, "the send to reach the provider")
        eventually(waiting, "notify to be recording the send")
        crash(notify)

    [left] = sql(system, "SELECT state, attempts FROM notify.sms_messages WHERE sms_id = $1", sms_id)
    assert (left["state"], left["attempts"]) == ("sending", 1), "the killed notify recorded nothing after the send"

    restart(notify)
    [sms] = sms_for(system, operator, person.user_id, 1)
    assert sms["sms_id"] == str(sms_id) and sms["attempts"] == 2  # the takeover counted as an attempt
    assert sms["provider_message_id"] == f"local-{sink_id}", "found by lookup, not sent again"
    time.sleep(1)
    assert len(sink(system, operator, str(sms_id))) == 1
    metrics = httpx.get(notify.metrics_url, timeout=15).text
    assert re.search(r'^flexenroll_sms_lookups_total\{outcome="found"\} 1\.0$', metrics, re.M), "one lookup found it"
    assert stored_events(system, "notify", "SmsSent", "sms_id", str(sms_id)) == 1
    view = person.wait_for_status(application_id, "approved", notified=True)
    assert timeline_kinds(view).count("sms_sent") == 1


def test_enrollment_status_survives_a_crash_of_enrollment(system: dict[str, ServiceProcess]) -> None:
    person, application_id = submitted(system, "吴磊", date(1987, 1, 23), male=True)
    reviewer = staff(system, "reviewer")
    enrollment = system["enrollment"]
    groups = [group(system, "enrollment", purpose) for purpose in ("people", "review", "status")]
    members = [group_members(g)[1] for g in groups]

    # Dies once EnrollmentSubmitted is on the topic (its outbox row gone), so review sees it.
    eventually(lambda: published(system, "enrollment", "EnrollmentSubmitted", application_id), "submission relayed")
    crash(enrollment)
    case = pending_case(system, reviewer, application_id, attempt=1)
    decide(system, reviewer, case["case_id"], {"decision": "approved"})
    eventually(lambda: published(system, "review", "ReviewDecided", application_id), "ReviewDecided on the topic")

    restart(enrollment)
    view = person.wait_for_status(application_id, "approved", notified=True)
    kinds = timeline_kinds(view)
    for kind in ("verified", "notice_accepted", "drafted", "submitted", "review_opened", "approved", "sms_sent"):
        assert kinds.count(kind) == 1, (kind, view["timeline"])
    assert kinds.count("document_uploaded") == 4, kinds
    assert kinds.index("submitted") < kinds.index("review_opened") < kinds.index("approved"), kinds
    assert view["attempt"] == 1 and view["agency_code"] == case["agency"]["code"]

    # The review facts became enrollment's own events exactly once, after the restart.
    for groups_id, dead in zip(groups, members, strict=True):
        await_takeover(groups_id, dead)
    assert stored_events(system, "enrollment", "ApplicationUnderReview", "application_id", application_id) == 1
    assert stored_events(system, "enrollment", "ApplicationApproved", "application_id", application_id) == 1
    assert timeline_kinds(person.status(application_id)) == kinds

    person.read_agency_notice(application_id)  # guide PART-8: before the registration form
    pdf = person.enrollment.get(f"/v1/applications/{application_id}/registration-form.pdf", headers=person.auth)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "吴磊" in text and "常州市劳动事务代理申请登记表" in text.replace(" ", "")


def test_one_review_case_per_submission_through_review_crashes(system: dict[str, ServiceProcess]) -> None:
    person, application_id = ready_to_submit(system, "郑洁", date(1995, 9, 30), male=False)
    reviewer = staff(system, "reviewer")
    review, cases = system["review"], group(system, "review", "cases")
    _, dead = group_members(cases)

    # review dies between EnrollmentSubmitted and the case: inside the consumer's transaction that
    # is inserting the case. Nothing of it may remain, and the offset must not have moved on.
    with hold(system, "review.cases", "INSERT", "true", "application_id", application_id) as waiting:
        person.submit(application_id)
        eventually(waiting, "review to be opening the case")
        crash(review)
    assert not sql(system, "SELECT 1 FROM review.cases WHERE application_id = $1", application_id)
    restart(review)

    # The new review gets the submission again and opens the case; it dies the moment the case is
    # in its table, perhaps before committing the offset or relaying ReviewCaseOpened.
    def opened() -> bool:
        return bool(sql(system, "SELECT 1 FROM review.cases WHERE application_id = $1", application_id))

    eventually(opened, "the case to be opened", timeout=60)
    dead |= group_members(cases)[1]
    crash(review)
    restart(review)
    await_takeover(cases, dead)

    case = pending_case(system, reviewer, application_id, attempt=1)
    rows = sql(system, "SELECT case_id, attempt FROM review.cases WHERE application_id = $1", application_id)
    assert [(str(r["case_id"]), r["attempt"]) for r in rows] == [(case["case_id"], 1)], rows
    assert stored_events(system, "review", "ReviewCaseOpened", "application_id", application_id) == 1
    eventually(lambda: published(system, "review", "ReviewCaseOpened", application_id), "ReviewCaseOpened relayed")
    assert person.wait_for_status(application_id, "under_review")["agency_code"] == case["agency"]["code"]

    decide(system, reviewer, case["case_id"], {"decision": "approved"})
    view = person.wait_for_status(application_id, "approved")
    kinds = timeline_kinds(view)
    assert kinds.count("review_opened") == 1 and kinds.count("approved") == 1, kinds
