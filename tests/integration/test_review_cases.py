"""review in-process over the real broker and database: a submission on enrollment.events opens
exactly one case, reviewers work the queue, and ReviewDecided reaches review.events. Submissions
carry the applicant's name, birth date and phone sealed under the key identity (its real code,
in-process) holds for them; review opens them, and blanks them when the person is erased."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from contracts import topics
from contracts.envelope import Envelope
from contracts.events.base import Sealed, mask_phone
from contracts.events.enrollment import EnrollmentSubmitted
from kernel.auth import Principal
from kernel.personal import PersonKeys, clear, seal
from kernel.problems import Forbidden
from kernel.runtime import ServiceRuntime
from kernel.server import exposition
from ops.kafka_ops import partitions_of
from services.review.app import build
from services.review.handlers import ReviewHandlers
from services.review.separation import identity_same_person, refuse_own_case
from services.review.settings import ReviewSettings
from tests.support.identity import Person, RunningIdentity, running_identity, unique_phone
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_ADMIN,
    KAFKA_BOOTSTRAP,
    group_prefix,
    provision_schema,
    topic,
)
from tests.support.people import id_number
from tests.support.tokens import bearer, token


@dataclass
class Review:
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    schema: str
    identity: RunningIdentity
    keys: PersonKeys
    handlers: ReviewHandlers

    def auth(self, role: str, user_id: UUID | None = None, agency: str | None = None) -> dict[str, str]:
        return bearer(Principal(user_id or uuid4(), role, scope=agency), 600)  # type: ignore[arg-type]


@pytest.fixture
async def review(schema: str) -> AsyncIterator[Review]:
    settings = ReviewSettings(
        schema_name=schema,
        consumer_group_prefix=group_prefix("it"),
        database_url=DATABASE_URL,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        review_metrics_refresh_seconds=0.2,
        review_enrollment_url="https://enrol.example",
    )
    await provision_schema("review", schema)
    async with running_identity() as identity:
        keys = identity.keys("review")
        asks_identity = identity_same_person("http://identity.test", transport=httpx.ASGITransport(app=identity.app))

        async def same_person(token: str, applicant_id: UUID) -> bool | None:
            # The own_case check asks the running identity. Tokens minted by tests/support/tokens.py
            # name no staff account there (None: not linked); such a reviewer counts as someone
            # else here. test_nobody_decides_their_own_case logs in as real staff.
            return bool(await asks_identity(token, applicant_id))

        app, runtime = build(settings, keys=keys, same_person=same_person)
        await runtime.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://review") as http:
                yield Review(runtime, http, schema, identity, keys, ReviewHandlers(app.state.review, keys))
        finally:
            await runtime.stop()


async def submission(review: Review, person: Person | None = None, **changes: Any) -> Envelope:
    """EnrollmentSubmitted as enrollment publishes it (its schema example, with a fresh application)
    of a new applicant verified at identity (张三, born 1990-03-07), sealed with their real key."""
    person = person or await review.identity.person(name="张三", birth=date(1990, 3, 7))
    key = await review.keys.key_of(person.user_id)
    assert key is not None
    fields = {"name": "张三", "birth_date": "1990-03-07", "phone": person.phone}
    personal = seal(key, person.user_id, fields).model_dump(mode="json")
    fresh = {"application_id": str(uuid4()), "applicant_id": str(person.user_id), "personal": personal,
             "submitted_at": datetime.now(UTC).isoformat()}  # fmt: skip
    return resubmission(EnrollmentSubmitted.model_json_schema()["examples"][0], **{**fresh, **changes})


def resubmission(data: dict[str, Any], **changes: Any) -> Envelope:
    """A submission with `data` changed (e.g. the next attempt of the same applicant), as published."""
    event = EnrollmentSubmitted.model_validate({**data, **changes})
    return Envelope.wrap(
        event,
        stream_id=f"application-{event.application_id}",
        stream_version=5,
        producer="enrollment",
        correlation_id=f"corr-{event.application_id}",
    )


async def send(producer: AIOKafkaProducer, envelope: Envelope) -> None:
    await producer.send_and_wait(
        topic(topics.ENROLLMENT_EVENTS), envelope.to_json(), key=envelope.kafka_key(), headers=envelope.kafka_headers()
    )


async def eventually(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 30.0) -> Any:
    for _ in range(int(seconds / 0.1)):
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


async def handled(review: Review, event_id: UUID) -> bool:
    sql = f'SELECT count(*) FROM "{review.schema}".processed_events WHERE event_id = $1'
    return bool(await review.runtime.pool.fetchval(sql, event_id))


async def cases_of(review: Review, application_id: str) -> list[dict[str, Any]]:
    """The cases of one application, through the API (the topic holds other tests' submissions too)."""
    rows = await review.runtime.pool.fetch(
        f'SELECT case_id FROM "{review.schema}".cases WHERE application_id = $1 ORDER BY attempt', UUID(application_id)
    )
    found = []
    for row in rows:
        answer = await review.http.get(f"/v1/cases/{row['case_id']}", headers=review.auth("operator"))
        assert answer.status_code == 200, answer.text
        found.append(answer.json())
    return found


async def end_offsets(topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options())
    await consumer.start()
    try:
        parts = await partitions_of(KAFKA_ADMIN, [topic], wait_seconds=5)
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def find_published(start: dict[TopicPartition, int], matches: Callable[[Any], bool]) -> Any:
    """The first record after `start` whose JSON value `matches` (30 s at most)."""
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    if matches(json.loads(record.value)):
                        return record
        raise AssertionError("no matching record was published")
    finally:
        await consumer.stop()


async def test_one_case_per_submission_then_a_decision_is_published(review: Review, producer: AIOKafkaProducer) -> None:
    review_topic_start = await end_offsets(topic(topics.REVIEW_EVENTS))
    first = await submission(review, residence_district_code="320412")
    application_id = str(first.data["application_id"])
    await send(producer, first)
    await eventually(lambda: cases_of(review, application_id), "the case appears in the queue")

    # The same message twice more (redelivery), then the same submission re-published with a
    # new event_id; it is the last on its partition, so once it is handled all were.
    await send(producer, first)
    await send(producer, first)
    republished = first.model_copy(update={"event_id": uuid4()})
    await send(producer, republished)
    await eventually(lambda: handled(review, republished.event_id), "the re-published submission is handled")
    cases = await cases_of(review, application_id)
    assert len(cases) == 1
    opened = await review.runtime.pool.fetch(
        f'SELECT stream_id FROM "{review.schema}".events '
        "WHERE event_type = 'ReviewCaseOpened' AND data->>'application_id' = $1",
        application_id,
    )
    assert [r["stream_id"] for r in opened] == [f"case-{cases[0]['case_id']}"]

    case = cases[0]
    assert case["status"] == "pending" and case["attempt"] == 1 and case["overdue"] is False
    assert case["agency"] == {"code": "320412", "name": "常州市武进区人力资源和社会保障局劳动就业管理中心"}
    applicant = case["applicant"]
    assert applicant["name"] == "张三" and applicant["id_number_masked"] == "3204**********1234"
    sealed_fields = await review.keys.open(Sealed.model_validate(first.data["personal"]))
    assert sealed_fields is not None
    phone = sealed_fields["phone"]
    assert applicant["phone_masked"] == mask_phone(phone) and applicant["gender"] == "male"
    assert applicant["birth_date"] == "1990-03-07" and applicant["personal_data_erased"] is False
    assert applicant["pension_tier"] == 3 and applicant["medical_tier"] == 5
    assert {d["kind"] for d in case["documents"]} == {
        "id_card_front",
        "id_card_back",
        "hukou_first_page",
        "hukou_own_page",
    }
    assert f"https://enrol.example/v1/applications/{application_id}/documents/id_card_front" in {
        d["url"] for d in case["documents"]
    }

    case_id = case["case_id"]
    reviewer_id = uuid4()
    reviewer = review.auth("reviewer", reviewer_id)
    decided = await review.http.post(f"/v1/cases/{case_id}/decision", json={"decision": "approved"}, headers=reviewer)
    assert decided.status_code == 201, decided.text
    assert decided.json()["status"] == "decided" and decided.json()["decision"] == "approved"

    again = await review.http.post(
        f"/v1/cases/{case_id}/decision",
        json={"decision": "rejected", "reasons": [{"code": "other", "text": "重复"}]},
        headers=reviewer,
    )
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    assert again.headers["content-type"].startswith("application/problem+json")

    record = await find_published(
        review_topic_start,
        lambda v: v["event_type"] == "ReviewDecided" and v["data"]["application_id"] == application_id,
    )
    body = json.loads(record.value)
    assert set(body) == {
        "event_id", "event_type", "schema_version", "stream_id", "stream_version", "occurred_at",
        "producer", "correlation_id", "causation_id", "data",
    }  # fmt: skip
    assert record.key == f"case-{case_id}".encode() and body["stream_id"] == f"case-{case_id}"
    assert body["producer"] == "review" and body["stream_version"] == 2 and body["schema_version"] == 1
    assert body["correlation_id"] == first.correlation_id  # the application's flow, end to end
    assert dict(record.headers)["event_type"] == b"ReviewDecided"
    assert body["data"]["decision"] == "approved" and body["data"]["reasons"] == []
    assert body["data"]["reviewer_id"] == str(reviewer_id) and body["data"]["attempt"] == 1

    resubmitted = resubmission(first.data, attempt=2)
    await send(producer, resubmitted)
    await eventually(lambda: handled(review, resubmitted.event_id), "the second attempt is handled")
    assert sorted(c["attempt"] for c in await cases_of(review, application_id)) == [1, 2]


async def test_the_queue_puts_overdue_cases_first_and_counts_them(review: Review, producer: AIOKafkaProducer) -> None:
    late = await submission(review, submitted_at="2025-09-30T02:00:00Z", residence_district_code="320481")
    fresh = await submission(review, residence_district_code="320405")  # no office of its own: the city's
    for envelope in (fresh, late):
        await send(producer, envelope)
        await eventually(lambda e=envelope: handled(review, e.event_id), "the submission is handled")  # type: ignore[misc]

    staff = review.auth("reviewer")
    queue = (await review.http.get("/v1/cases?limit=500", headers=staff)).json()
    assert queue["status"] == "pending"
    cases = queue["cases"]  # earlier runs' submissions are on the topic as well
    flags = [c["overdue"] for c in cases]
    assert flags == sorted(flags, reverse=True), "overdue cases come first"
    assert [c["due_on"] for c in cases] == sorted(c["due_on"] for c in cases), "then by due date"
    ids = [c["application_id"] for c in cases]
    assert ids.index(late.data["application_id"]) < ids.index(fresh.data["application_id"])
    overdue = cases[ids.index(late.data["application_id"])]
    current = cases[ids.index(fresh.data["application_id"])]
    assert overdue["overdue"] is True and overdue["due_on"] == "2025-10-10"  # after the National Day holiday
    assert current["overdue"] is False and current["agency"]["code"] == "320400"
    assert current["due_on"] > queue["today"]
    assert overdue["applicant"]["age_at_submission"] == 35  # born 1990-03-07

    one_agency = (await review.http.get("/v1/cases?agency=320481&limit=500", headers=staff)).json()["cases"]
    assert overdue["case_id"] in {c["case_id"] for c in one_agency}
    assert {c["agency"]["code"] for c in one_agency} == {"320481"}
    single = await review.http.get(f"/v1/cases/{overdue['case_id']}", headers=staff)
    assert single.status_code == 200 and single.json() == overdue

    expected_overdue = float(sum(c["overdue"] for c in one_agency))
    expected_pending = float(sum(c["agency"]["code"] == "320400" for c in cases))

    async def gauges_show_it() -> bool:
        value = REGISTRY.get_sample_value("flexenroll_review_cases_overdue", {"agency": "320481"})
        return value == expected_overdue

    await eventually(gauges_show_it, "the overdue gauge counts the late cases", 10)
    assert expected_overdue >= 1
    assert REGISTRY.get_sample_value("flexenroll_review_cases_pending", {"agency": "320400"}) == expected_pending
    metrics = exposition()
    assert f'flexenroll_review_cases_overdue{{agency="320481"}} {expected_overdue}' in metrics


async def test_refusals_are_problem_details(review: Review, producer: AIOKafkaProducer) -> None:
    envelope = await submission(review)
    await send(producer, envelope)
    await eventually(lambda: handled(review, envelope.event_id), "the submission is handled")
    case_id = (await cases_of(review, str(envelope.data["application_id"])))[0]["case_id"]
    reviewer, applicant = review.auth("reviewer"), review.auth("applicant")
    decision = f"/v1/cases/{case_id}/decision"

    async def refused(method: str, url: str, status: int, code: str, **kwargs: Any) -> None:
        answer = await review.http.request(method, url, **kwargs)
        assert answer.status_code == status, answer.text
        assert answer.json()["code"] == code
        assert answer.headers["content-type"].startswith("application/problem+json")

    await refused("GET", "/v1/cases", 401, "authentication_required")
    await refused("POST", decision, 401, "authentication_required", json={"decision": "approved"})
    # An applicant's token does not name review in its `aud` (kernel.auth.AUDIENCES): not a token for review at all.
    await refused("GET", "/v1/cases", 401, "invalid_token", headers=applicant)
    await refused("GET", f"/v1/cases/{case_id}", 401, "invalid_token", headers=applicant)
    await refused("POST", decision, 401, "invalid_token", json={"decision": "approved"}, headers=applicant)
    await refused("POST", decision, 403, "wrong_role", json={"decision": "approved"}, headers=review.auth("operator"))
    await refused("GET", "/v1/cases?status=open", 422, "invalid_request", headers=reviewer)
    await refused("GET", "/v1/cases?agency=999999", 422, "unknown_agency", headers=reviewer)
    await refused("GET", f"/v1/cases/{uuid4()}", 404, "case_not_found", headers=reviewer)
    await refused("GET", "/v1/cases/not-a-uuid", 422, "invalid_request", headers=reviewer)
    await refused("POST", f"/v1/cases/{uuid4()}/decision", 404, "case_not_found", json={"decision": "approved"},
                  headers=reviewer)  # fmt: skip
    bad_bodies: list[tuple[Any, str]] = [
        ({"decision": "maybe"}, "invalid_request"),
        ({"decision": "approved", "extra": 1}, "invalid_request"),
        ("not json", "invalid_request"),
        ({"decision": "approved", "reasons": [{"code": "other", "text": "x"}]}, "reasons_not_allowed"),
        ({"decision": "rejected"}, "reasons_required"),
        ({"decision": "rejected", "reasons": [{"code": "bad_luck"}]}, "invalid_reason"),
        ({"decision": "rejected", "reasons": [{"code": "other"}]}, "reason_text_required"),
        ({"decision": "rejected", "reasons": [{"code": "other", "text": "长" * 201}]}, "invalid_request"),
    ]
    for body, code in bad_bodies:
        await refused("POST", decision, 422, code, json=body, headers=reviewer)
    still = (await review.http.get(f"/v1/cases/{case_id}", headers=reviewer)).json()
    assert still["status"] == "pending"

    rejected = await review.http.post(
        decision,
        json={"decision": "rejected", "reasons": [{"code": "documents_unreadable", "text": "身份证反面模糊"}]},
        headers=reviewer,
    )
    assert rejected.status_code == 201, rejected.text
    assert rejected.json()["reasons"] == [{"code": "documents_unreadable", "text": "证件照片不清晰：身份证反面模糊"}]
    decided = (await review.http.get("/v1/cases?status=decided", headers=reviewer)).json()["cases"]
    assert [c["case_id"] for c in decided] == [case_id]

    codes = await review.http.get("/v1/reason-codes", headers=reviewer)
    assert {"code": "other", "label": "其他", "text_required": True} in codes.json()
    await refused("GET", "/v1/reason-codes", 401, "authentication_required")


async def test_a_reviewer_with_an_agency_sees_and_decides_only_its_cases(
    review: Review, producer: AIOKafkaProducer
) -> None:
    """Reviewer A at 新北区 (320411), reviewer B at 天宁区 (320402), a city-level reviewer (no agency)."""
    in_a = await submission(review, residence_district_code="320411")
    in_b = await submission(review, residence_district_code="320402")
    for envelope in (in_a, in_b):
        await send(producer, envelope)
        await eventually(lambda e=envelope: handled(review, e.event_id), "the submission is handled")  # type: ignore[misc]
    [case_a] = await cases_of(review, str(in_a.data["application_id"]))
    [case_b] = await cases_of(review, str(in_b.data["application_id"]))
    assert (case_a["agency"]["code"], case_b["agency"]["code"]) == ("320411", "320402")
    a_id, b_id = case_a["case_id"], case_b["case_id"]
    reviewer_a, reviewer_b = review.auth("reviewer", agency="320411"), review.auth("reviewer", agency="320402")
    city, operator = review.auth("reviewer"), review.auth("operator")

    async def queue(auth: dict[str, str], query: str = "status=all") -> tuple[str | None, list[str], set[str]]:
        answer = await review.http.get(f"/v1/cases?limit=500&{query}", headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()  # earlier tests' submissions are on the topic too: look for ours
        return body["agency"], [c["case_id"] for c in body["cases"]], {c["agency"]["code"] for c in body["cases"]}

    async def refused(method: str, url: str, auth: dict[str, str], **kwargs: Any) -> None:
        answer = await review.http.request(method, url, headers=auth, **kwargs)
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        body = answer.json()
        assert body["code"] == "not_your_agency" and body["status"] == 403
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), "detail is for people, in Chinese"

    # The queues: each agency's reviewer gets their own (asked for or not); city-level and operators get all.
    for auth, query in ((reviewer_a, "status=all"), (reviewer_a, "agency=320411")):
        agency, ids, codes = await queue(auth, query)
        assert agency == "320411" and a_id in ids and b_id not in ids and codes == {"320411"}
    agency, ids, codes = await queue(reviewer_b)
    assert agency == "320402" and b_id in ids and a_id not in ids and codes == {"320402"}
    for auth in (city, operator):
        agency, ids, codes = await queue(auth)
        assert agency is None and {a_id, b_id} <= set(ids) and {"320411", "320402"} <= codes
        agency, ids, codes = await queue(auth, "agency=320402")
        assert agency == "320402" and b_id in ids and a_id not in ids and codes == {"320402"}
    await refused("GET", "/v1/cases?agency=320402", reviewer_a)
    await refused("GET", "/v1/cases?agency=320411&status=decided", reviewer_b)
    await refused("GET", "/v1/cases?agency=999999", reviewer_a)  # not theirs, whether review knows it or not
    # An agency review does not list (a district without an office of its own) has no cases, no error.
    assert (await queue(review.auth("reviewer", agency="320405")))[1:] == ([], set())

    # One case: their own agency's, or 403; city-level and operators read both.
    for auth, own, other in ((reviewer_a, a_id, b_id), (reviewer_b, b_id, a_id)):
        assert (await review.http.get(f"/v1/cases/{own}", headers=auth)).json()["case_id"] == own
        await refused("GET", f"/v1/cases/{other}", auth)
    for auth in (city, operator):
        for case_id in (a_id, b_id):
            assert (await review.http.get(f"/v1/cases/{case_id}", headers=auth)).status_code == 200
    missing = await review.http.get(f"/v1/cases/{uuid4()}", headers=reviewer_a)
    assert missing.status_code == 404 and missing.json()["code"] == "case_not_found"

    # Decisions: only on their own agency's cases; refused before anything is looked at or written.
    approve = {"decision": "approved"}
    await refused("POST", f"/v1/cases/{a_id}/decision", reviewer_b, json=approve)
    await refused("POST", f"/v1/cases/{b_id}/decision", reviewer_a, json=approve)
    reject = {"decision": "rejected", "reasons": [{"code": "other", "text": "不是本机构的"}]}
    await refused("POST", f"/v1/cases/{b_id}/decision", reviewer_a, json=reject)
    assert (await review.http.get(f"/v1/cases/{a_id}", headers=city)).json()["status"] == "pending"
    decided = await review.http.post(f"/v1/cases/{a_id}/decision", headers=reviewer_a, json=approve)
    assert decided.status_code == 201, decided.text
    assert decided.json()["status"] == "decided" and decided.json()["agency"]["code"] == "320411"
    await refused("POST", f"/v1/cases/{a_id}/decision", reviewer_b, json=approve)  # 403, not 409: not theirs to know
    by_city = await review.http.post(f"/v1/cases/{b_id}/decision", headers=city, json=approve)
    assert by_city.status_code == 201, by_city.text

    _, decided_a, codes = await queue(reviewer_a, "status=decided")
    assert a_id in decided_a and b_id not in decided_a and codes == {"320411"}


async def test_the_queue_filters_by_application(review: Review, producer: AIOKafkaProducer) -> None:
    """From an application to its cases: one per submission, within the reviewer's agency."""
    first = await submission(review, residence_district_code="320411")
    application_id = str(first.data["application_id"])
    second = resubmission(first.data, attempt=2)
    elsewhere = await submission(review, residence_district_code="320402")
    for envelope in (first, second, elsewhere):
        await send(producer, envelope)
        await eventually(lambda e=envelope: handled(review, e.event_id), "the submission is handled")  # type: ignore[misc]

    async def cases(auth: dict[str, str], of: str, status: str = "pending") -> list[dict[str, Any]]:
        answer = await review.http.get("/v1/cases", params={"application_id": of, "status": status}, headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["application_id"] == of
        return list(answer.json()["cases"])

    operator, tianning = review.auth("operator"), review.auth("reviewer", agency="320402")
    xinbei = review.auth("reviewer", agency="320411")

    both = await cases(operator, application_id, "all")
    assert sorted(c["attempt"] for c in both) == [1, 2]
    assert {c["application_id"] for c in both} == {application_id}
    assert {c["case_id"] for c in await cases(xinbei, application_id, "all")} == {c["case_id"] for c in both}
    # A reviewer bound to another agency still sees only their agency's cases: none of this application.
    assert await cases(tianning, application_id, "all") == []
    [theirs] = await cases(tianning, str(elsewhere.data["application_id"]))
    assert theirs["agency"]["code"] == "320402"
    refused = await review.http.get(f"/v1/cases?application_id={application_id}&agency=320411", headers=tianning)
    assert refused.status_code == 403 and refused.json()["code"] == "not_your_agency"

    first_case = next(c for c in both if c["attempt"] == 1)
    decided = await review.http.post(
        f"/v1/cases/{first_case['case_id']}/decision", json={"decision": "approved"}, headers=xinbei
    )
    assert decided.status_code == 201, decided.text
    assert [c["attempt"] for c in await cases(xinbei, application_id)] == [2]  # pending, the default
    assert [c["case_id"] for c in await cases(operator, application_id, "decided")] == [first_case["case_id"]]
    malformed = await review.http.get("/v1/cases?application_id=not-a-uuid", headers=operator)
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_request"


async def test_the_case_table_refuses_a_second_case_for_a_submission(review: Review) -> None:
    """The database itself holds the rule, whatever code runs against it."""
    with pytest.raises(asyncpg.UniqueViolationError):
        async with review.runtime.pool.acquire() as conn, conn.transaction():
            for case_id in (uuid4(), uuid4()):
                await conn.execute(
                    f'INSERT INTO "{review.schema}".cases (case_id, application_id, attempt, applicant_id, '
                    "agency_code, due_on, opened_at, submitted_at, applicant_name, id_number_masked, gender, "
                    "birth_date, phone_masked, household_kind, household_region_code, residence_district_code, "
                    "documents) VALUES ($1, $2, 1, $2, '320402', now(), now(), now(), '张三', 'x', 'male', now(), "
                    "'x', 'changzhou', '320402', '320402', '[]')",
                    case_id,
                    UUID(int=7),
                )


async def test_an_erased_applicant_is_blanked_in_every_case_and_the_decisions_stay(
    review: Review, producer: AIOKafkaProducer
) -> None:
    """docs/personal-data.md, "Erasure": PersonErased blanks the name, birth date and phone in each
    case of the person; a submission that arrives later (even one published in clear, as v1 was)
    opens its case without them."""
    first = await submission(review, residence_district_code="320411")
    application_id, applicant_id = str(first.data["application_id"]), UUID(str(first.data["applicant_id"]))
    second = resubmission(first.data, attempt=2)
    for envelope in (first, second):
        await send(producer, envelope)
        await eventually(lambda e=envelope: handled(review, e.event_id), "the submission is handled")  # type: ignore[misc]
    [one, two] = await cases_of(review, application_id)
    assert one["applicant"]["name"] == two["applicant"]["name"] == "张三"
    reviewer = review.auth("reviewer")
    decided = await review.http.post(f"/v1/cases/{one['case_id']}/decision", json={"decision": "approved"},
                                     headers=reviewer)  # fmt: skip
    assert decided.status_code == 201, decided.text

    await review.identity.erase(applicant_id)  # PersonErased reaches review on identity.events

    async def blanked() -> bool:
        return all(c["applicant"]["personal_data_erased"] for c in await cases_of(review, application_id))

    await eventually(blanked, "both cases blanked")
    for case in await cases_of(review, application_id):
        applicant = case["applicant"]
        assert applicant["name"] == "（已删除）" and applicant["birth_date"] is None
        assert applicant["phone_masked"] is None and applicant["age_at_submission"] is None
        assert applicant["id_number_masked"] == "3204**********1234" and applicant["gender"] == "male"
    [decided_case, pending] = await cases_of(review, application_id)
    assert (decided_case["status"], decided_case["decision"]) == ("decided", "approved")
    assert pending["status"] == "pending"  # still to be decided: the application goes on
    stored = await review.runtime.pool.fetch(
        "SELECT applicant_name, birth_date, phone_masked FROM cases WHERE applicant_id = $1", applicant_id
    )
    assert [tuple(r) for r in stored] == [(None, None, None)] * 2
    events = await review.runtime.pool.fetch(
        "SELECT event_type FROM events WHERE data->>'application_id' = $1 ORDER BY position", application_id
    )
    assert sorted(r["event_type"] for r in events) == ["ReviewCaseOpened", "ReviewCaseOpened", "ReviewDecided"]

    # a third attempt in clear (alg none: a v1 submission upcast), after the erasure; handed to the
    # handler directly, so that no clear personal data goes on a topic of the session
    fields = {"name": "张三", "birth_date": "1990-03-07", "phone": "+8613800138000"}
    late = resubmission(first.data, attempt=3, personal=clear(applicant_id, fields).model_dump(mode="json"))
    async with review.runtime.pool.acquire() as conn, conn.transaction():
        await review.handlers.on_enrollment_submitted(conn, late)
    third = next(c for c in await cases_of(review, application_id) if c["attempt"] == 3)
    assert third["applicant"]["name"] == "（已删除）" and third["applicant"]["phone_masked"] is None


async def test_nobody_decides_their_own_case(review: Review, producer: AIOKafkaProducer) -> None:
    """A reviewer whose linked ID number is the applicant's (a second, applicant account of theirs)
    is refused: 403 own_case, nothing published; another reviewer decides. A staff account linked
    to no ID number decides nothing (identity's answer is asked with the reviewer's own token)."""
    identity = review.identity
    applicant = await identity.person(name="张三", birth=date(1990, 3, 7))
    assert applicant.id_number is not None
    envelope = await submission(review, person=applicant)
    application_id = str(envelope.data["application_id"])
    await send(producer, envelope)
    (case,) = await eventually(lambda: cases_of(review, application_id), "the case appears in the queue")

    async def staff_login(number: str) -> tuple[dict[str, str], str]:
        phone = unique_phone()
        await identity.service.add_staff(phone, "s3cret-pass", "reviewer", "张三", number, "test")
        session = await identity.client.post("/v1/sessions", json={"phone": phone, "password": "s3cret-pass"})
        assert session.status_code == 201, session.text
        return {"Authorization": f"Bearer {session.json()['access_token']}"}, session.json()["user_id"]

    same, _ = await staff_login(applicant.id_number)
    url = f"/v1/cases/{case['case_id']}/decision"
    refused = await review.http.post(url, json={"decision": "approved"}, headers=same)
    assert refused.status_code == 403 and refused.json()["code"] == "own_case", refused.text
    still = await cases_of(review, application_id)
    assert still[0]["status"] == "pending" and still[0]["decision"] is None

    other, other_id = await staff_login(id_number(date(1979, 9, 9), region="320411", seq=uuid4().int % 400))
    decided = await review.http.post(url, json={"decision": "approved"}, headers=other)
    assert decided.status_code == 201, decided.text
    assert decided.json()["reviewer_id"] == other_id  # every decision records its reviewer

    # Identity's answer itself: unlinked staff, applicants asking, the real staff.
    asks = identity_same_person("http://identity.test", transport=httpx.ASGITransport(app=identity.app))
    with pytest.raises(Forbidden) as unlinked:
        await refuse_own_case(asks, token(Principal(uuid4(), "reviewer")), applicant.user_id)
    assert unlinked.value.code == "staff_identity_not_linked"
    with pytest.raises(Forbidden) as own:
        await refuse_own_case(asks, same["Authorization"].removeprefix("Bearer "), applicant.user_id)
    assert own.value.code == "own_case"
    await refuse_own_case(asks, other["Authorization"].removeprefix("Bearer "), applicant.user_id)  # no refusal
    as_applicant = await identity.client.get(f"/v1/staff/me/same-person/{applicant.user_id}", headers=applicant.auth)
    assert as_applicant.status_code == 403 and as_applicant.json()["code"] == "wrong_role"
