"""enrollment in-process over HTTP, on the real database and broker: the journey, refusals,
rejection and resubmission, the registration form; personal data sealed with the keys identity
(its real code, in-process) holds, and erased with them."""

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pypdf
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from contracts.access import owner_of
from contracts.envelope import Envelope
from contracts.events import topic_of
from contracts.events.base import Event, Sealed, mask_id_number
from contracts.events.identity import UserVerified
from contracts.events.notify import SmsSent
from contracts.events.payment import PaymentSettled
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from kernel.auth import Principal, Role
from kernel.clock import local_date
from kernel.personal import PersonKeys, clear, seal
from kernel.relay import new_producer
from kernel.runtime import ServiceRuntime
from kernel.server import exposition
from kernel.web import CORRELATION_HEADER
from services.enrollment import projections
from services.enrollment.ages import add_months
from services.enrollment.app import build
from services.enrollment.handlers import EnrollmentHandlers
from services.enrollment.settings import EnrollmentSettings
from tests.support import documents
from tests.support.identity import RunningIdentity, running_identity
from tests.support.infra import (
    DATABASE_URL,
    KAFKA_ADMIN,
    KAFKA_BOOTSTRAP,
    drop_schemas,
    group_prefix,
    provision_schema,
    topic,
    unique_name,
)
from tests.support.tokens import bearer

# Real files: enrollment decodes images and parses PDFs (tests/support/documents.py).
JPEG = documents.jpeg()
PNG = documents.png()
PDF = documents.pdf()
MAX_BYTES = 64 * 1024
DOCS = ("id_card_front", "id_card_back", "hukou_first_page", "hukou_own_page")


@dataclass
class Enrollment:
    app: FastAPI
    http: httpx.AsyncClient
    runtime: ServiceRuntime
    settings: EnrollmentSettings
    producer: AIOKafkaProducer
    identity: RunningIdentity
    keys: PersonKeys

    def auth(self, user_id: UUID, role: Role = "applicant") -> dict[str, str]:
        return bearer(Principal(user_id, role), 600)

    async def publish(self, event: Event, stream_id: str, causation: str | None = None) -> Envelope:
        contract_topic = topic_of(event.event_type)
        producer = owner_of(contract_topic)  # consumers refuse any other (kernel.consumer)
        assert producer is not None
        envelope = Envelope.wrap(
            event, stream_id=stream_id, stream_version=1, producer=producer, correlation_id="c", causation_id=causation
        )
        where = topic(contract_topic)
        await self.producer.send_and_wait(
            where, envelope.to_json(), key=envelope.kafka_key(), headers=envelope.kafka_headers()
        )
        return envelope


@pytest.fixture
async def enrollment(tmp_path: Path) -> AsyncIterator[Enrollment]:
    settings = EnrollmentSettings(
        database_url=DATABASE_URL,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        schema_name=unique_name("enr"),
        consumer_group_prefix=group_prefix(),
        enrollment_blob_root=tmp_path / "blobs",
        enrollment_document_max_bytes=MAX_BYTES,
        batch_wait_ms=5,
    )
    await provision_schema("enrollment", settings.db_schema)
    async with running_identity() as identity:
        keys = identity.keys("enrollment")
        app, runtime = build(settings, keys=keys)
        await runtime.start()
        producer = new_producer(KAFKA_ADMIN, client_id="enrollment-test")
        await producer.start()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://enrollment")
        try:
            yield Enrollment(app, http, runtime, settings, producer, identity, keys)
        finally:
            await http.aclose()
            await producer.stop()
            await runtime.stop()
            await drop_schemas(settings.db_schema)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 40) -> None:
    for _ in range(int(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


async def seed_person(e: Enrollment, birth: date = date(1990, 3, 7), male: bool = True, name: str = "赵六") -> UUID:
    """A person registered and verified at identity (their key is real); enrollment's view of them
    written directly as its handlers would, rather than waited for on identity.events."""
    person = await e.identity.person(name=name, birth=birth, male=male)
    key = await e.keys.key_of(person.user_id)
    assert key is not None and person.id_number is not None
    verified = UserVerified(
        user_id=person.user_id, id_number_masked=mask_id_number(person.id_number),
        gender="male" if male else "female", provider="local",
        personal=seal(key, person.user_id, {"name": name, "birth_date": birth.isoformat()}),
        verified_at=datetime.now(UTC),
    )  # fmt: skip
    async with e.runtime.pool.acquire() as conn:
        # verified first: a replay may deliver identity's events in either order
        await projections.record_verified(conn, verified, name, birth)
        await projections.record_registered(conn, person.user_id, person.phone)
    return person.user_id


APPLICATION = {
    "notice_version": "2020-12",
    "pension_tier": 3,
    "medical_tier": 5,
    "household_kind": "changzhou",
    "household_region_code": "320402",
    "residence_district_code": "320411",
}


async def open_application(e: Enrollment, user_id: UUID, **overrides: Any) -> httpx.Response:
    return await e.http.post("/v1/applications", json={**APPLICATION, **overrides}, headers=e.auth(user_id))


async def upload(e: Enrollment, user_id: UUID, app_id: str, kind: str, data: bytes = JPEG) -> httpx.Response:
    files = {"file": ("photo.bin", data, "application/octet-stream")}
    return await e.http.put(f"/v1/applications/{app_id}/documents/{kind}", files=files, headers=e.auth(user_id))


async def ready_application(e: Enrollment, user_id: UUID) -> str:
    created = await open_application(e, user_id)
    assert created.status_code == 201, created.text
    app_id: str = created.json()["application_id"]
    for kind in DOCS:
        assert (await upload(e, user_id, app_id, kind)).status_code == 200
    return app_id


def nanjing(**overrides: Any) -> dict[str, Any]:
    """A Jiangsu household from another city (Nanjing 鼓楼区) living in Changzhou."""
    return {"household_kind": "jiangsu_resident", "household_region_code": "320106", **overrides}


async def accept_agency_notice(e: Enrollment, user_id: UUID, app_id: str, version: str) -> httpx.Response:
    body = {"version": version}
    return await e.http.post(f"/v1/applications/{app_id}/agency-notice", json=body, headers=e.auth(user_id))


async def status_of(e: Enrollment, user_id: UUID, app_id: str) -> dict[str, Any]:
    response = await e.http.get(f"/v1/applications/{app_id}", headers=e.auth(user_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def decide(e: Enrollment, user_id: UUID, app_id: str, attempt: int, decision: str) -> Envelope:
    """What the review service would publish: a case, then its decision."""
    case_id, ids = uuid4(), {"application_id": UUID(app_id), "applicant_id": user_id, "attempt": attempt}
    now = datetime.now(UTC)
    await e.publish(
        ReviewCaseOpened(case_id=case_id, **ids, agency_code="320411", due_on=date.today() + timedelta(days=2),
                         opened_at=now),
        f"case-{case_id}",
    )  # fmt: skip
    reasons = [{"code": "document_unreadable", "text": "身份证反面照片不清晰，请重新上传。"}]
    return await e.publish(
        ReviewDecided(case_id=case_id, **ids, decision=decision, reasons=reasons if decision == "rejected" else [],
                      reviewer_id=uuid4(), decided_at=now),
        f"case-{case_id}",
    )  # fmt: skip


async def wait_status(e: Enrollment, user_id: UUID, app_id: str, status: str, attempt: int) -> dict[str, Any]:
    async def reached() -> bool:
        view = await status_of(e, user_id, app_id)
        return bool(view["status"] == status and view["attempt"] == attempt)

    await eventually(reached, f"status {status} (attempt {attempt})")
    return await status_of(e, user_id, app_id)


async def test_the_journey_from_verified_person_to_active_with_the_registration_form(enrollment: Enrollment) -> None:
    e = enrollment
    # the real path: identity registers and verifies, its sealed events arrive on identity.events
    # and enrollment opens them with the person's key
    person = await e.identity.person(name="钱七", phone="+8613912345678")
    user_id = person.user_id

    async def known() -> bool:
        row = await e.runtime.pool.fetchrow("SELECT name, phone, birth_date FROM people WHERE user_id = $1", user_id)
        return row is not None and row["name"] == "钱七" and row["phone"] == person.phone

    await eventually(known, "person from identity.events")

    notice = (await e.http.get("/v1/notice")).json()
    assert notice["version"] == "2020-12" and {h["number"] for h in notice["help_lines"]} == {"12333", "96888732"}
    app_id = await ready_application(e, user_id)
    before = await e.http.get(f"/v1/applications/{app_id}/registration-form.pdf", headers=e.auth(user_id))
    assert before.status_code == 409 and before.json()["code"] == "not_approved"

    submitted = await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted" and submitted.json()["attempt"] == 1

    decided = await decide(e, user_id, app_id, 1, "approved")
    view = await wait_status(e, user_id, app_id, "approved", 1)
    assert view["agency_code"] == "320411" and view["pension_tier"] == 3 and not view["notified"]

    sms_id = uuid4()
    await e.publish(
        SmsSent(sms_id=sms_id, recipient_id=user_id, phone_masked="+86139****5678", template="review_approved",
                provider="local_sink", provider_message_id=None, causation_event_id=decided.event_id,
                sent_at=datetime.now(UTC)),
        f"sms-{sms_id}",
    )  # fmt: skip

    async def notified() -> bool:
        return bool((await status_of(e, user_id, app_id))["notified"])

    await eventually(notified, "notified after SmsSent")

    unread = await e.http.get(f"/v1/applications/{app_id}/registration-form.pdf", headers=e.auth(user_id))
    assert unread.status_code == 409 and unread.json()["code"] == "agency_notice_not_read"
    agency_notice = (await e.http.get("/v1/agency-notice")).json()
    assert agency_notice["title"] == "劳动事务代理人员须知"
    accepted = await accept_agency_notice(e, user_id, app_id, agency_notice["version"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["agency_notice_version"] == agency_notice["version"]
    assert accepted.json()["agency_notice_accepted_at"] is not None

    form = await e.http.get(f"/v1/applications/{app_id}/registration-form.pdf", headers=e.auth(user_id))
    assert form.status_code == 200 and form.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(form.content)).pages)
    assert "钱七" in text and "常州市劳动事务代理申请登记表" in text
    assert "常州市新北区人力资源和社会保障局劳动就业管理中心" in text  # the agency review routed to (320411)
    assert "江苏省常州市天宁区" in text and "常州市新北区" in text  # household 320402, residence 320411
    assert f"版本：{agency_notice['version']}" in text  # the form states the accepted notice version
    assert "13912345678" not in text  # the phone is masked on the form

    bill_id = uuid4()
    await e.publish(
        PaymentSettled(payment_id=uuid4(), bill_id=bill_id, account_id=uuid4(), insured_person_id=user_id,
                       payer_id=None, payer_name_masked=None, channel="alipay", channel_txn_id=str(bill_id),
                       amount_fen=100, bank=None, settled_at=datetime.now(UTC)),
        f"bill-{bill_id}",
    )  # fmt: skip
    view = await wait_status(e, user_id, app_id, "active", 1)
    kinds = [t["kind"] for t in view["timeline"]]
    assert kinds[:3] == ["verified", "notice_accepted", "drafted"] and kinds[-1] == "payment_settled"
    assert kinds.index("approved") < kinds.index("agency_notice_accepted")
    mine = await e.http.get("/v1/applications?mine=true", headers=e.auth(user_id))
    assert [a["application_id"] for a in mine.json()] == [app_id]
    again = await open_application(e, user_id)
    assert again.status_code == 409 and again.json()["code"] == "already_enrolled"


async def test_rejection_correction_and_resubmission_ignore_a_stale_decision(enrollment: Enrollment) -> None:
    e = enrollment
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)
    assert (await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))).status_code == 200
    await decide(e, user_id, app_id, 1, "rejected")
    view = await wait_status(e, user_id, app_id, "rejected", 1)
    assert view["review_reasons"][0]["code"] == "document_unreadable"

    patched = await e.http.patch(f"/v1/applications/{app_id}", json={"pension_tier": 5}, headers=e.auth(user_id))
    assert patched.status_code == 200 and patched.json()["pension_tier"] == 5
    assert (await upload(e, user_id, app_id, "id_card_back", PNG)).json()["content_type"] == "image/png"
    resubmitted = await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))
    assert resubmitted.json()["attempt"] == 2 and resubmitted.json()["status"] == "submitted"

    await decide(e, user_id, app_id, 1, "approved")  # late news about attempt 1
    await decide(e, user_id, app_id, 2, "approved")
    view = await wait_status(e, user_id, app_id, "approved", 2)
    assert view["review_reasons"] == []
    history = await e.runtime.store.load(e.runtime.pool, f"application-{app_id}")
    assert [h.event_type for h in history].count("ApplicationApproved") == 1


async def test_refusals_are_problem_details_with_stable_codes(enrollment: Enrollment) -> None:
    e = enrollment
    not_verified = await open_application(e, uuid4())
    assert (not_verified.status_code, not_verified.json()["code"]) == (422, "not_verified")
    user_id = await seed_person(e)
    stranger = await seed_person(e, birth=date(1960, 1, 1))
    # guide Q2 told at once: too old to apply, before uploading anything
    too_old = await open_application(e, stranger)
    assert (too_old.status_code, too_old.json()["code"]) == (422, "not_eligible_age"), too_old.text

    async def code(response: Awaitable[httpx.Response], status: int) -> str:
        r = await response
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        return str(r.json()["code"])

    assert await code(e.http.post("/v1/applications", json=APPLICATION), 401) == "authentication_required"
    reviewer = e.auth(uuid4(), "reviewer")
    assert await code(e.http.post("/v1/applications", json=APPLICATION, headers=reviewer), 403) == "wrong_role"
    assert await code(open_application(e, user_id, notice_version="2019-01"), 422) == "notice_outdated"
    assert await code(open_application(e, user_id, notice_version=None), 422) == "notice_not_accepted"
    assert await code(open_application(e, user_id, pension_tier=None, medical_tier=None), 422) == "nothing_to_enrol"
    assert await code(open_application(e, user_id, pension_tier=7), 422) == "invalid_tier"
    assert await code(open_application(e, user_id, pension_tier="x"), 422) == "invalid_request"
    assert await code(open_application(e, user_id, household_region_code="310101"), 422) == "not_eligible_household"
    assert await code(open_application(e, user_id, residence_district_code="320405"), 422) == "unknown_district"

    created = await open_application(e, user_id)
    app_id = created.json()["application_id"]
    assert await code(open_application(e, user_id), 409) == "application_open"
    url = f"/v1/applications/{app_id}"
    assert await code(e.http.get(url), 401) == "authentication_required"
    assert await code(e.http.get(url, headers=e.auth(stranger)), 403) == "not_your_application"
    assert (
        await code(e.http.get(f"/v1/applications/{uuid4()}", headers=e.auth(user_id)), 404) == "application_not_found"
    )
    assert await code(e.http.get("/v1/applications/not-a-uuid", headers=e.auth(user_id)), 422) == "invalid_request"
    # staff see an application only once submitted: a draft is not there for them (issue 9)
    assert await code(e.http.get(url, headers=reviewer), 404) == "application_not_found"

    assert await code(upload(e, user_id, app_id, "passport"), 422) == "unknown_document_kind"
    assert await code(upload(e, user_id, app_id, "id_card_front", b"GIF89a" + b"0" * 50), 415) == (
        "unsupported_document_type"
    )
    assert await code(upload(e, user_id, app_id, "id_card_front", JPEG + b"0" * MAX_BYTES), 413) == (
        "document_too_large"
    )
    assert await code(upload(e, stranger, app_id, "id_card_front"), 403) == "not_your_application"
    no_file = e.http.put(f"{url}/documents/id_card_front", data={"x": "1"}, headers=e.auth(user_id))
    assert await code(no_file, 422) == "file_missing"
    assert (await upload(e, user_id, app_id, "id_card_front", PDF)).status_code == 200
    document = await e.http.get(f"{url}/documents/id_card_front", headers=e.auth(user_id))
    assert document.content == PDF and document.headers["content-type"] == "application/pdf"
    assert await code(e.http.get(f"{url}/documents/id_card_front", headers=e.auth(stranger)), 403) == (
        "not_your_application"
    )

    missing = await e.http.post(f"{url}/submit", headers=e.auth(user_id))
    assert missing.status_code == 422 and missing.json()["code"] == "documents_missing"
    assert missing.json()["missing"] == ["id_card_back", "hukou_first_page", "hukou_own_page"]
    assert "户口簿首页" in missing.json()["detail"]

    for path in ("/v1/back-payments", "/v1/suspensions"):
        assert await code(e.http.post(path, json={"any": "thing"}, headers=e.auth(user_id)), 422) == "counter_only"
        assert await code(e.http.post(path), 401) == "authentication_required"

    metrics = exposition()
    assert 'flexenroll_enrollment_refusals_total{action="open",code="not_eligible_age"}' in metrics


async def test_a_submitted_application_is_not_submitted_twice(enrollment: Enrollment) -> None:
    e = enrollment
    user_id = await seed_person(e, birth=date(1985, 1, 1), male=False)
    app_id = await ready_application(e, user_id)
    first = await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))
    assert first.status_code == 200
    second = await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))
    assert (second.status_code, second.json()["code"]) == (409, "already_submitted")
    patch = await e.http.patch(f"/v1/applications/{app_id}", json={"pension_tier": 1}, headers=e.auth(user_id))
    assert (patch.status_code, patch.json()["code"]) == (409, "not_editable")


async def test_the_agency_notice_is_accepted_after_approval_once_by_the_owner(enrollment: Enrollment) -> None:
    e, stranger = enrollment, uuid4()
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)
    version = (await e.http.get("/v1/agency-notice")).json()["version"]
    url = f"/v1/applications/{app_id}"

    early = await accept_agency_notice(e, user_id, app_id, version)
    assert (early.status_code, early.json()["code"]) == (409, "not_approved")
    assert (await e.http.post(f"{url}/submit", headers=e.auth(user_id))).status_code == 200
    await decide(e, user_id, app_id, 1, "approved")
    await wait_status(e, user_id, app_id, "approved", 1)

    form = await e.http.get(f"{url}/registration-form.pdf", headers=e.auth(uuid4(), "reviewer"))
    assert (form.status_code, form.json()["code"]) == (409, "agency_notice_not_read")
    outdated = await accept_agency_notice(e, user_id, app_id, "2019-01")
    assert (outdated.status_code, outdated.json()["code"]) == (422, "notice_outdated")
    assert outdated.json()["current_version"] == version
    empty = await e.http.post(f"{url}/agency-notice", json={}, headers=e.auth(user_id))
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_request")
    other = await accept_agency_notice(e, stranger, app_id, version)
    assert (other.status_code, other.json()["code"]) == (403, "not_your_application")
    anonymous = await e.http.post(f"{url}/agency-notice", json={"version": version})
    assert anonymous.status_code == 401

    first = await accept_agency_notice(e, user_id, app_id, version)
    assert first.status_code == 200, first.text
    again = await accept_agency_notice(e, user_id, app_id, version)
    assert again.status_code == 200  # idempotent: the same view, no second event
    assert again.json()["agency_notice_accepted_at"] == first.json()["agency_notice_accepted_at"]
    history = await e.runtime.store.load(e.runtime.pool, f"application-{app_id}")
    assert [h.event_type for h in history].count("AgencyNoticeAccepted") == 1
    assert [t["kind"] for t in again.json()["timeline"]].count("agency_notice_accepted") == 1
    printed = await e.http.get(f"{url}/registration-form.pdf", headers=e.auth(user_id))
    assert printed.status_code == 200 and printed.content.startswith(b"%PDF")


async def test_the_documents_depend_on_the_household_kind(enrollment: Enrollment) -> None:
    """Guide PART-6 and Q2: a Changzhou household shows the household register, a Jiangsu
    household from another city the residence permit; the other proof does not do."""
    e = enrollment
    local = await seed_person(e)
    incomer = await seed_person(e, birth=date(1988, 6, 15), male=False)
    local_app = (await open_application(e, local)).json()["application_id"]
    incomer_app = (await open_application(e, incomer, **nanjing())).json()["application_id"]
    for who, app_id, kinds in (
        (local, local_app, ("id_card_front", "id_card_back", "residence_permit")),
        (incomer, incomer_app, DOCS),
    ):
        for kind in kinds:
            assert (await upload(e, who, app_id, kind)).status_code == 200

    refused = await e.http.post(f"/v1/applications/{local_app}/submit", headers=e.auth(local))
    assert (refused.status_code, refused.json()["code"]) == (422, "documents_missing")
    assert refused.json()["missing"] == ["hukou_first_page", "hukou_own_page"]
    assert "户口簿首页、户口簿本人页" in refused.json()["detail"]
    refused = await e.http.post(f"/v1/applications/{incomer_app}/submit", headers=e.auth(incomer))
    assert (refused.status_code, refused.json()["code"]) == (422, "documents_missing")
    assert refused.json()["missing"] == ["residence_permit"] and "居住证" in refused.json()["detail"]

    assert (await upload(e, incomer, incomer_app, "residence_permit", PDF)).status_code == 200
    submitted = await e.http.post(f"/v1/applications/{incomer_app}/submit", headers=e.auth(incomer))
    assert submitted.status_code == 200, submitted.text


async def test_age_is_checked_again_at_submission(enrollment: Enrollment) -> None:
    """Opened the day before his 60th birthday (guide Q2), submitted on it: refused then."""
    e = enrollment
    now = datetime.now(UTC)
    today = local_date(now)
    birth = add_months(today, -60 * 12) + timedelta(days=1)
    user_id = await seed_person(e, birth=birth)
    app_id = await ready_application(e, user_id)
    service = e.app.state.enrollment
    service.clock = lambda: now + timedelta(days=1)
    refused = await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))
    assert (refused.status_code, refused.json()["code"]) == (422, "not_eligible_age"), refused.text
    service.clock = lambda: now
    assert (await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))).status_code == 200


async def test_an_applications_events_share_the_correlation_id_of_its_first(enrollment: Enrollment) -> None:
    """Each request comes with its own correlation id; the application's events all carry the
    opening request's, review's outcome included (caused by review's events)."""
    e = enrollment
    user_id = await seed_person(e)

    def request(n: int) -> dict[str, str]:
        return {**e.auth(user_id), CORRELATION_HEADER: str(UUID(int=n))}  # taken only as a UUID

    created = await e.http.post("/v1/applications", json=APPLICATION, headers=request(1))
    app_id = created.json()["application_id"]
    url = f"/v1/applications/{app_id}"
    for n, kind in enumerate(DOCS, start=2):
        files = {"file": ("photo.bin", JPEG, "application/octet-stream")}
        assert (await e.http.put(f"{url}/documents/{kind}", files=files, headers=request(n))).status_code == 200
    patched = await e.http.patch(url, json={"pension_tier": 4}, headers=request(10))
    assert patched.status_code == 200
    assert (await e.http.post(f"{url}/submit", headers=request(11))).status_code == 200
    decided = await decide(e, user_id, app_id, 1, "approved")
    await wait_status(e, user_id, app_id, "approved", 1)
    version = (await e.http.get("/v1/agency-notice")).json()["version"]
    accepted = await e.http.post(f"{url}/agency-notice", json={"version": version}, headers=request(12))
    assert accepted.status_code == 200

    history = await e.runtime.store.load(e.runtime.pool, f"application-{app_id}")
    assert [h.event_type for h in history][-3:] == [
        "ApplicationUnderReview",
        "ApplicationApproved",
        "AgencyNoticeAccepted",
    ]
    assert {h.correlation_id for h in history} == {str(UUID(int=1))}
    assert history[-2].causation_id == str(decided.event_id)  # review's decision caused the copy
    facts = await projections.facts_of(e.runtime.pool, UUID(app_id))
    assert {f.correlation_id for f in facts if f.producer == "enrollment"} == {str(UUID(int=1))}


async def test_the_status_view_names_the_review_case(enrollment: Enrollment) -> None:
    e = enrollment
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)
    assert (await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))).status_code == 200
    assert (await status_of(e, user_id, app_id))["case_id"] is None
    decided = await decide(e, user_id, app_id, 1, "rejected")
    view = await wait_status(e, user_id, app_id, "rejected", 1)
    assert view["case_id"] == str(decided.data["case_id"])


async def approved_and_printable(e: Enrollment, user_id: UUID) -> str:
    """An application submitted, approved and with the agency notice read: its form prints."""
    app_id = await ready_application(e, user_id)
    assert (await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))).status_code == 200
    await decide(e, user_id, app_id, 1, "approved")
    await wait_status(e, user_id, app_id, "approved", 1)
    version = (await e.http.get("/v1/agency-notice")).json()["version"]
    assert (await accept_agency_notice(e, user_id, app_id, version)).status_code == 200
    return app_id


async def test_the_submission_seals_name_birth_date_and_phone_with_the_applicants_key(enrollment: Enrollment) -> None:
    """docs/personal-data.md: EnrollmentSubmitted v2 carries them only sealed, under the key identity holds."""
    e = enrollment
    user_id = await seed_person(e, name="孙八", birth=date(1992, 8, 17))
    app_id = await ready_application(e, user_id)
    assert (await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))).status_code == 200
    [stored] = [h for h in await e.runtime.store.load(e.runtime.pool, f"application-{app_id}")
                if h.event_type == "EnrollmentSubmitted"]  # fmt: skip
    assert stored.schema_version == 2
    text = stored.to_json().decode()
    phone = await e.runtime.pool.fetchval("SELECT phone FROM people WHERE user_id = $1", user_id)
    assert "孙八" not in text and "1992-08-17" not in text and phone[3:] not in text
    sealed = Sealed.model_validate(stored.data["personal"])
    assert sealed.key_id == user_id and sealed.alg == "A256GCM"
    reviewer_keys = e.identity.keys("review")  # another reader, with identity's real key
    assert await reviewer_keys.open(sealed, owner=user_id) == {
        "name": "孙八",
        "birth_date": "1992-08-17",
        "phone": phone,
    }


async def test_an_erased_person_leaves_enrollment_and_the_history_stays(enrollment: Enrollment) -> None:
    """PersonErased: the people row goes, the cached key is forgotten, the form can no longer be
    printed (410), the status stays approved, and a late event in clear brings nothing back."""
    e = enrollment
    user_id = await seed_person(e, name="周九")
    app_id = await approved_and_printable(e, user_id)
    form_url = f"/v1/applications/{app_id}/registration-form.pdf"
    printed = await e.http.get(form_url, headers=e.auth(user_id))
    assert printed.status_code == 200  # the key is cached now: only `forget` makes it go at once

    await e.identity.erase(user_id)  # PersonErased reaches enrollment on identity.events

    async def forgotten() -> bool:
        return bool(await e.runtime.pool.fetchval("SELECT count(*) FROM people WHERE user_id = $1", user_id) == 0)

    await eventually(forgotten, "the people row deleted on PersonErased")
    assert await e.runtime.pool.fetchval("SELECT count(*) FROM erased_people WHERE user_id = $1", user_id) == 1
    refused = await e.http.get(form_url, headers=e.auth(uuid4(), "operator"))
    assert refused.status_code == 410, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "personal_data_erased" and "删除" in refused.json()["detail"]
    view = await status_of(e, user_id, app_id)
    assert view["status"] == "approved" and view["attempt"] == 1
    history = [h.event_type for h in await e.runtime.store.load(e.runtime.pool, f"application-{app_id}")]
    assert history.count("EnrollmentSubmitted") == 1 and history.count("ApplicationApproved") == 1

    # a UserVerified published in clear before sealing existed (v2 upcast with alg none), replayed
    # late; handed to the handler directly, so that no clear personal data goes on a session topic
    late = UserVerified(
        user_id=user_id, id_number_masked="3204**********1235", gender="male", provider="local",
        personal=clear(user_id, {"name": "周九", "birth_date": "1990-03-07"}), verified_at=datetime.now(UTC),
    )  # fmt: skip
    envelope = Envelope.wrap(
        late, stream_id=f"user-{user_id}", stream_version=9, producer="identity", correlation_id="c"
    )
    async with e.runtime.pool.acquire() as conn, conn.transaction():
        await EnrollmentHandlers(e.app.state.enrollment).on_user_verified(conn, envelope)
    assert await e.runtime.pool.fetchval("SELECT count(*) FROM people WHERE user_id = $1", user_id) == 0
