"""Every endpoint of every service, fuzzed by schemathesis from the app's own OpenAPI schema:
every answer is what the schema declares (status code, content type, body), bad input gets a
clear refusal (problem+json, stable code, Chinese detail) and never a 500.

In-process over ASGI, with the real database and broker behind each app's runtime. Every case is
sent as generated (no token), then as an applicant, a reviewer and an operator, and again with
resources seeded for them in the path (an account, an application with a document, a review
case), so that generated bodies reach the domain rules and not only the 404s. One class per
service: its runtime runs while the class's tests run, and is stopped (schema dropped) after.
"""

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from contracts.documents import DOCUMENT_KINDS
from contracts.envelope import Envelope
from contracts.events.base import Event, mask_id_number
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from contracts.events.identity import UserVerified
from kernel.personal import PersonKeys, new_data_key, seal
from kernel.problems import PROBLEM_MEDIA_TYPE
from kernel.runtime import OpenStorage
from kernel.settings import ServiceSettings
from services.enrollment import projections as enrollment_projections
from services.enrollment.app import build as build_enrollment
from services.enrollment.settings import EnrollmentSettings
from services.identity.app import build as build_identity
from services.identity.settings import IdentitySettings
from services.notify.app import build as build_notify
from services.notify.settings import NotifySettings
from services.payment.app import build as build_payment
from services.payment.domain import Month, account_id_for
from services.payment.people import PeopleDirectory
from services.payment.service import PaymentService
from services.payment.settings import PaymentSettings
from services.review.app import build as build_review
from services.review.domain import ApplicantData
from services.review.service import ReviewService
from services.review.settings import ReviewSettings
from tests.support import documents
from tests.support.apps import isolated
from tests.support.fuzz import Target, problem_of
from tests.support.identity import TEST_SETTINGS, texted_code_now
from tests.support.infra import service_pool, unique_name
from tests.support.people import id_number
from tests.support.tokens import as_role

JPEG = documents.jpeg()  # a real one: enrollment decodes it
BLOBS = Path(tempfile.gettempdir()) / unique_name("fuzz-blobs")  # made by the first upload

identity = Target(*build_identity(IdentitySettings(**isolated("identity"), **TEST_SETTINGS)))  # type: ignore[arg-type]
# enrollment seals a submission with the applicant's key: another identity, running while
# enrollment's class runs, keeps the keys (docs/personal-data.md).
key_custody = Target(*build_identity(IdentitySettings(**isolated("identity"), **TEST_SETTINGS)))  # type: ignore[arg-type]
enrollment = Target(
    *build_enrollment(
        EnrollmentSettings(
            **isolated("enrollment"),  # type: ignore[arg-type]
            enrollment_blob_root=BLOBS,
            enrollment_document_max_bytes=64 * 1024,
        ),
        keys=PersonKeys(
            ServiceSettings(service="enrollment", identity_url="http://identity.test"),
            transport=httpx.ASGITransport(app=key_custody.app),
        ),
    )
)


async def _not_the_applicant(token: str, applicant_id: UUID) -> bool | None:
    """review's own_case question (services/review/separation.py) answered by a stand-in: no
    identity runs beside the fuzzed review, and its tokens name no staff account."""
    return False


review = Target(*build_review(ReviewSettings(**isolated("review")), same_person=_not_the_applicant))  # type: ignore[arg-type]
notify = Target(*build_notify(NotifySettings(**isolated("notify"))))  # type: ignore[arg-type]
# payment asks identity whether an ID number and a name are one person's (POST /v1/bills/lookup).
# A stand-in answers like identity's POST /v1/people/match (docs/personal-data.md): the seeded
# account's person for the OpenAPI example's pair, person_not_found for every other. A stand-in
# because schemathesis stops every running lifespan between tests, a second app's included.
MATCHED: dict[str, str] = {}


def _people_match(request: httpx.Request) -> httpx.Response:
    asked = json.loads(request.content)
    if "user_id" in MATCHED and (asked["id_number"], asked["name"]) == ("320402199001010017", "张三"):
        return httpx.Response(200, json={"user_id": MATCHED["user_id"]})
    return httpx.Response(404, json={"code": "person_not_found"})


payment_settings = PaymentSettings(**isolated("payment"), payment_lookup_min_seconds=0)  # type: ignore[arg-type]
payment = Target(
    *build_payment(
        payment_settings,
        people=PeopleDirectory(payment_settings, transport=httpx.MockTransport(_people_match)),
    )
)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
# schemathesis' own multipart generation touches the global `random` (not these tests).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)


def wrap(event: Event, stream_id: str, producer: str) -> Envelope:
    return Envelope.wrap(event, stream_id=stream_id, stream_version=1, producer=producer, correlation_id="fuzz")


async def seed_person(schema: str, user_id: UUID) -> None:
    """enrollment's view of a verified applicant, as its handlers write it from identity's events (opened)."""
    number = id_number(date(1990, 3, 7))
    verified = UserVerified(
        user_id=user_id, id_number_masked=mask_id_number(number), gender="male", provider="local",
        personal=seal(new_data_key(), user_id, {"name": "赵六", "birth_date": "1990-03-07"}),
        verified_at=datetime.now(UTC),
    )  # fmt: skip
    pool = await service_pool("enrollment", schema, 1, 1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await enrollment_projections.record_verified(conn, verified, "赵六", date(1990, 3, 7))
            await enrollment_projections.record_registered(conn, user_id, "+8613912345678")
    finally:
        await pool.close()


async def seed_case(schema: str) -> UUID:
    """A pending review case, as an EnrollmentSubmitted on enrollment.events would open it."""
    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    submitted = EnrollmentSubmitted.model_validate(
        {**example, "application_id": str(uuid4()), "submitted_at": datetime.now(UTC).isoformat()}
    )
    pool = await service_pool("review", schema, 1, 1)
    intake = ReviewService(OpenStorage(pool, review.runtime.store), review.app.state.rules)
    try:
        async with pool.acquire() as conn, conn.transaction():
            envelope = wrap(submitted, f"application-{submitted.application_id}", "enrollment")
            applicant = ApplicantData(name="张三", birth_date=date(1990, 3, 7), phone_masked="+86138****8000")
            opened = await intake.open_case(conn, submitted, applicant, envelope, datetime.now(UTC))
    finally:
        await pool.close()
    assert opened is not None
    return opened.case_id


async def seed_account(schema: str) -> UUID:
    """An approved applicant's contribution account with this month's bill, as payment's handlers
    and `flexctl payment issue-bills` make them; the person's user_id."""
    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    submitted = EnrollmentSubmitted.model_validate(
        {**example, "application_id": str(uuid4()), "submitted_at": datetime.now(UTC).isoformat()}
    )
    approved = ApplicationApproved(
        application_id=submitted.application_id, applicant_id=submitted.applicant_id, attempt=submitted.attempt,
        case_id=uuid4(), decided_at=datetime.now(UTC),
    )  # fmt: skip
    pool = await service_pool("payment", schema, 1, 1)
    service = PaymentService(OpenStorage(pool, payment.runtime.store), payment.app.state.payment.rules)
    try:
        stream = f"application-{submitted.application_id}"
        await service.note_submission(submitted, wrap(submitted, stream, "enrollment"))
        await service.open_account(approved, wrap(approved, stream, "enrollment"))
        await service.bill_account(account_id_for(approved.applicant_id), Month.at(datetime.now(UTC)))
    finally:
        await pool.close()
    return approved.applicant_id


def register_now(http: requests.Session, target: Target, phone: str) -> requests.Response:
    """POST /v1/users with the code texted to the phone (identity's code_sink, TEST_SETTINGS)."""
    asked = http.post("/v1/phone-codes", json={"phone": phone, "purpose": "register"})
    assert asked.status_code == 202, asked.text
    code = texted_code_now(target.runtime.settings.db_schema, phone)
    return http.post("/v1/users", json={"phone": phone, "password": "s3cret-pass", "code": code})


def created(response: requests.Response) -> str:
    assert response.status_code in (200, 201), response.text
    return str(response.json()["user_id" if "user_id" in response.json() else "application_id"])


@pytest.fixture(scope="class")
def identity_running() -> Iterator[requests.Session]:
    with identity.running() as http:
        user_id = created(register_now(http, identity, "13800138000"))
        identity.act_as("applicant", UUID(user_id))
        identity.know("user_id", [user_id])
        yield http


@pytest.fixture(scope="class")
def enrollment_running() -> Iterator[requests.Session]:
    with key_custody.running() as keys_http, enrollment.running() as http:
        applicant = UUID(created(register_now(keys_http, key_custody, "13900139000")))
        asyncio.run(seed_person(enrollment.runtime.settings.db_schema, applicant))
        auth = enrollment.act_as("applicant", applicant)
        opened = http.post(
            "/v1/applications",
            headers=auth,
            json={"notice_version": "2020-12", "pension_tier": 3, "medical_tier": 5, "household_kind": "changzhou",
                  "household_region_code": "320402", "residence_district_code": "320411"},
        )  # fmt: skip
        application_id = created(opened)
        url = f"/v1/applications/{application_id}/documents/id_card_front"
        uploaded = http.put(url, headers=auth, files={"file": ("front.jpg", JPEG, "image/jpeg")})
        assert uploaded.status_code == 200, uploaded.text
        enrollment.know("application_id", [application_id])
        enrollment.know("kind", DOCUMENT_KINDS)
        yield http
    shutil.rmtree(BLOBS, ignore_errors=True)


@pytest.fixture(scope="class")
def review_running() -> Iterator[requests.Session]:
    with review.running() as http:
        review.know("case_id", [str(asyncio.run(seed_case(review.runtime.settings.db_schema)))])
        yield http


@pytest.fixture(scope="class")
def payment_running() -> Iterator[requests.Session]:
    with payment.running() as http:
        person = asyncio.run(seed_account(payment.runtime.settings.db_schema))
        MATCHED["user_id"] = str(person)
        payment.act_as("applicant", person)
        payment.know("user_id", [str(person)])
        yield http


@pytest.fixture(scope="class")
def notify_running() -> Iterator[requests.Session]:
    with notify.running() as http:
        yield http


@pytest.mark.parametrize("target", [identity, enrollment, review, payment, notify], ids=lambda t: t.app.title)
def test_refusals_are_declared_as_the_problems_they_are(target: Target) -> None:
    """Every declared 4xx answer is problem+json with the problem schema, and only that: the
    conformance checks then read refusals' bodies (an empty schema would let any body pass)."""
    declared = [
        (f"{method.upper()} {path} {status}", answer.get("content", {}))
        for path, operations in target.app.openapi()["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if status.startswith("4")
    ]
    assert declared
    for where, content in declared:
        assert list(content) == [PROBLEM_MEDIA_TYPE], where
        assert {"code", "detail", "status"} <= set(content[PROBLEM_MEDIA_TYPE]["schema"]["required"]), where


@pytest.mark.usefixtures("identity_running")
class TestIdentity:
    @identity.schema.parametrize()
    @FUZZ
    def test_answers_match_the_schema_and_refusals_are_problems(self, case: schemathesis.Case[Any]) -> None:
        identity.call_as_everyone(case)


@pytest.mark.usefixtures("enrollment_running")
class TestEnrollment:
    @enrollment.schema.parametrize()
    @FUZZ
    def test_answers_match_the_schema_and_refusals_are_problems(self, case: schemathesis.Case[Any]) -> None:
        enrollment.call_as_everyone(case)


@pytest.mark.usefixtures("review_running")
class TestReview:
    @review.schema.parametrize()
    @FUZZ
    def test_answers_match_the_schema_and_refusals_are_problems(self, case: schemathesis.Case[Any]) -> None:
        review.call_as_everyone(case)

    # Regressions: each of these was a 500 (the database refusing the value) before its fix.

    def test_an_offset_past_what_the_database_counts_is_refused(self, review_running: requests.Session) -> None:
        response = review_running.get("/v1/cases", params={"offset": 2**63}, headers=review.headers["reviewer"])
        assert problem_of(response)["code"] == "invalid_request"

    def test_a_nul_character_in_a_reason_is_refused(self, review_running: requests.Session) -> None:
        case_id = asyncio.run(seed_case(review.runtime.settings.db_schema))
        body: dict[str, Any] = {
            "decision": "rejected",
            "reasons": [{"code": "documents_unreadable", "text": "照片\x00模糊"}],
        }
        response = review_running.post(f"/v1/cases/{case_id}/decision", json=body, headers=review.headers["reviewer"])
        assert problem_of(response)["code"] == "invalid_request"


@pytest.mark.usefixtures("payment_running")
class TestPayment:
    @payment.schema.parametrize()
    @FUZZ
    def test_answers_match_the_schema_and_refusals_are_problems(self, case: schemathesis.Case[Any]) -> None:
        payment.call_as_everyone(case)

    def test_the_seeded_person_reads_their_bill(self, payment_running: requests.Session) -> None:
        user_id = payment.ids["applicant"]
        answer = payment_running.get(f"/v1/insured/{user_id}/bills", headers=payment.headers["applicant"])
        assert answer.status_code == 200, answer.text
        assert [b["period"] for b in answer.json()["bills"]] == [str(Month.at(datetime.now(UTC)))]
        refused = payment_running.get(f"/v1/insured/{user_id}/bills", headers=payment.headers["reviewer"])
        assert problem_of(refused)["code"] == "invalid_token"  # a reviewer's `aud` does not name payment
        someone_else = payment_running.get(f"/v1/insured/{user_id}/bills", headers=as_role("applicant"))
        assert problem_of(someone_else)["code"] == "not_your_bills"

    @pytest.mark.parametrize("channel", ["wechat", "alipay", "unionpay_pos", "bank_counter", "bank_withholding"])
    def test_an_unsigned_notification_is_refused_and_settles_nothing(
        self, payment_running: requests.Session, channel: str
    ) -> None:
        user_id = payment.ids["applicant"]
        bills = payment_running.get(f"/v1/insured/{user_id}/bills", headers=payment.headers["applicant"])
        [bill] = bills.json()["bills"]
        body = f'{{"transaction_id": "T1", "out_trade_no": "{bill["bill_id"]}", "amount_fen": {bill["amount_fen"]}}}'
        answer = payment_running.post(f"/v1/channels/{channel}/notifications", data=body.encode())
        # Alipay's parameters are a form: a JSON body is not even a notification (422), the others 401.
        expected = (422, "invalid_notification") if channel == "alipay" else (401, "invalid_signature")
        assert (answer.status_code, problem_of(answer)["code"]) == expected
        too_large = payment_running.post(f"/v1/channels/{channel}/notifications", data=b" " * (64 * 1024 + 1))
        assert too_large.status_code == 413 and problem_of(too_large)["code"] == "notification_too_large"
        after = payment_running.get(f"/v1/insured/{user_id}/bills", headers=payment.headers["applicant"]).json()
        assert after["bills"][0]["status"] != "paid" and after["amount_due_fen"] == bill["amount_fen"]


@pytest.mark.usefixtures("notify_running")
class TestNotify:
    @notify.schema.parametrize()
    @FUZZ
    def test_answers_match_the_schema_and_refusals_are_problems(self, case: schemathesis.Case[Any]) -> None:
        notify.call_as_everyone(case)

    def test_a_nul_character_in_a_filter_is_refused(self, notify_running: requests.Session) -> None:
        response = notify_running.get("/v1/sms/sink", params={"out_id": "a\x00b"}, headers=notify.headers["operator"])
        assert problem_of(response)["code"] == "invalid_request"
