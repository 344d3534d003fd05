"""The application journey of the guide, every service a real process over the real broker and
database: verify → apply → upload → submit → case opened → decide → SMS → status → PDF; and
reject → SMS with the reason → correct → resubmit → approve."""

import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import pytest
from pypdf import PdfReader

from tests.support.people import id_number
from tests.support.processes import ROOT, ServiceProcess

T = TypeVar("T")
PASSWORD = "s3cret-pass"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 45.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    env = {**e2e_env, "CONSUMER_GROUP_PREFIX": f"e2e-{uuid4().hex[:8]}.", "BATCH_WAIT_MS": "10"}
    services = {name: ServiceProcess(name, env, log_dir) for name in ("identity", "enrollment", "review", "notify")}
    started: list[ServiceProcess] = []
    try:
        for service in services.values():
            started.append(service.start())
        yield services
    finally:
        for service in started:
            service.stop()


class Person:
    """An applicant on a phone, talking to the public APIs only."""

    def __init__(self, system: dict[str, ServiceProcess], name: str, birth: date, male: bool) -> None:
        self.system = system
        self.name = name
        self.phone = f"139{uuid4().int % 10**8:08d}"
        self.id_number = id_number(birth, male=male, seq=uuid4().int % 400)
        self.identity = httpx.Client(base_url=system["identity"].url, timeout=15)
        self.enrollment = httpx.Client(base_url=system["enrollment"].url, timeout=15)

    def register_and_verify(self) -> None:
        created = self.identity.post("/v1/users", json={"phone": self.phone, "password": PASSWORD})
        assert created.status_code == 201, created.text
        self.user_id = created.json()["user_id"]
        token = login(self.identity, self.phone)
        self.auth = {"Authorization": f"Bearer {token}"}
        verified = self.identity.post(
            f"/v1/users/{self.user_id}/verification",
            json={"name": self.name, "id_number": self.id_number},
            headers=self.auth,
        )
        assert verified.status_code == 201, verified.text

    def apply(self, **choices: Any) -> str:
        notice = self.enrollment.get("/v1/notice")
        assert notice.status_code == 200 and "12333" in notice.text and "96888732" in notice.text
        body = {"notice_version": notice.json()["version"], **choices}

        def created() -> str | None:  # enrollment learns of the verification through Kafka
            answer = self.enrollment.post("/v1/applications", json=body, headers=self.auth)
            if answer.status_code == 422 and answer.json()["code"] == "not_verified":
                return None
            assert answer.status_code == 201, answer.text
            return str(answer.json()["application_id"])

        return eventually(created, "enrollment to know the verified person")

    def upload(self, application_id: str, kind: str, content: bytes, filename: str) -> None:
        answer = self.enrollment.put(
            f"/v1/applications/{application_id}/documents/{kind}",
            files={"file": (filename, content, "application/octet-stream")},
            headers=self.auth,
        )
        assert answer.status_code in (200, 201), answer.text

    def submit(self, application_id: str) -> None:
        answer = self.enrollment.post(f"/v1/applications/{application_id}/submit", headers=self.auth)
        assert answer.status_code in (200, 201, 202), answer.text

    def read_agency_notice(self, application_id: str) -> dict[str, Any]:
        """Guide PART-8: after approval, read and accept 《劳动事务代理人员须知》 (before the form)."""
        notice = self.enrollment.get("/v1/agency-notice")
        assert notice.status_code == 200 and notice.json()["title"] == "劳动事务代理人员须知", notice.text
        body = {"version": notice.json()["version"]}
        answer = self.enrollment.post(f"/v1/applications/{application_id}/agency-notice", json=body, headers=self.auth)
        assert answer.status_code == 200, answer.text
        assert answer.json()["agency_notice_version"] == body["version"]
        return answer.json()  # type: ignore[no-any-return]

    def status(self, application_id: str) -> dict[str, Any]:
        answer = self.enrollment.get(f"/v1/applications/{application_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def wait_for_status(self, application_id: str, status: str, notified: bool = False) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            last.update(self.status(application_id))
            if last["status"] != status:
                return None
            return dict(last) if not notified or last["notified"] else None

        try:
            return eventually(reached, f"status {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last view: {last}") from None


def login(identity: httpx.Client, phone: str) -> str:
    session = identity.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert session.status_code == 201, session.text
    return str(session.json()["access_token"])


def staff(system: dict[str, ServiceProcess], role: str, agency: str | None = None) -> dict[str, str]:
    phone = f"137{uuid4().int % 10**8:08d}"
    env = {**system["identity"].env, "PYTHONPATH": str(ROOT)}
    where = ["--agency", agency] if agency else []
    subprocess.run(
        [sys.executable, "-m", "ops.flexctl", "staff", "add", "--phone", phone, "--password", PASSWORD, "--role", role,
         *where],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    identity = httpx.Client(base_url=system["identity"].url, timeout=15)
    return {"Authorization": f"Bearer {eventually(lambda: login(identity, phone), 'staff login')}"}


def pending_case(
    system: dict[str, ServiceProcess], reviewer: dict[str, str], application_id: str, attempt: int
) -> dict[str, Any]:
    review = httpx.Client(base_url=system["review"].url, timeout=15)

    def found() -> dict[str, Any] | None:
        answer = review.get("/v1/cases", params={"status": "pending"}, headers=reviewer)
        assert answer.status_code == 200, answer.text
        cases = [c for c in answer.json()["cases"] if c["application_id"] == application_id and c["attempt"] == attempt]
        assert len(cases) <= 1, "one case per submission"
        return cases[0] if cases else None

    return eventually(found, f"review case for attempt {attempt}")


def decide(system: dict[str, ServiceProcess], reviewer: dict[str, str], case_id: str, body: dict[str, Any]) -> None:
    review = httpx.Client(base_url=system["review"].url, timeout=15)
    answer = review.post(f"/v1/cases/{case_id}/decision", json=body, headers=reviewer)
    assert answer.status_code == 201, answer.text
    again = review.post(f"/v1/cases/{case_id}/decision", json=body, headers=reviewer)
    assert again.status_code == 409 and again.json()["code"] == "already_decided"


def sms_for(
    system: dict[str, ServiceProcess], operator: dict[str, str], user_id: str, count: int
) -> list[dict[str, Any]]:
    notify = httpx.Client(base_url=system["notify"].url, timeout=15)

    def sent() -> list[dict[str, Any]] | None:
        answer = notify.get("/v1/sms", params={"recipient_id": user_id}, headers=operator)
        assert answer.status_code == 200, answer.text
        items = [m for m in answer.json()["items"] if m["state"] == "sent"]
        assert len(items) <= count, "never more than one SMS per decision"
        return items if len(items) == count else None

    return eventually(sent, f"{count} SMS to the applicant")


def upload_changzhou_documents(person: Person, application_id: str) -> None:
    person.upload(application_id, "id_card_front", PNG, "front.png")
    person.upload(application_id, "id_card_back", JPEG, "back.jpg")
    person.upload(application_id, "hukou_first_page", PDF, "hukou1.pdf")
    person.upload(application_id, "hukou_own_page", JPEG, "hukou2.jpg")


def test_apply_review_approve_sms_status_and_registration_form(system: dict[str, ServiceProcess]) -> None:
    person = Person(system, "陈静", date(1990, 5, 20), male=False)
    person.register_and_verify()
    application_id = person.apply(
        pension_tier=3, medical_tier=5, household_kind="changzhou",
        household_region_code="320402", residence_district_code="320411",
    )  # fmt: skip
    assert person.status(application_id)["status"] == "draft"
    early = person.enrollment.post(f"/v1/applications/{application_id}/submit", headers=person.auth)
    assert early.status_code == 422 and early.json()["code"] == "documents_missing"
    upload_changzhou_documents(person, application_id)
    form = person.enrollment.get(f"/v1/applications/{application_id}/registration-form.pdf", headers=person.auth)
    assert form.status_code == 409 and form.json()["code"] == "not_approved"
    person.submit(application_id)

    # 新北区's reviewer (the residence district's agency) decides; 天宁区's may not even read the case.
    reviewer, operator = staff(system, "reviewer", agency="320411"), staff(system, "operator")
    case = pending_case(system, reviewer, application_id, attempt=1)
    assert case["applicant"]["name"] == "陈静" and case["agency"]["code"] == "320411"
    review = httpx.Client(base_url=system["review"].url, timeout=15)
    elsewhere = staff(system, "reviewer", agency="320402")
    for answer in (
        review.get(f"/v1/cases/{case['case_id']}", headers=elsewhere),
        review.post(f"/v1/cases/{case['case_id']}/decision", json={"decision": "approved"}, headers=elsewhere),
    ):
        assert answer.status_code == 403 and answer.json()["code"] == "not_your_agency", answer.text
    queue = review.get("/v1/cases", headers=elsewhere).json()
    assert queue["agency"] == "320402" and case["case_id"] not in {c["case_id"] for c in queue["cases"]}
    assert person.wait_for_status(application_id, "under_review")["status"] == "under_review"
    decide(system, reviewer, case["case_id"], {"decision": "approved"})

    [sms] = sms_for(system, operator, person.user_id, 1)
    assert "审核通过" in sms["text"] and person.phone not in str(sms)
    view = person.wait_for_status(application_id, "approved", notified=True)
    assert view["pension_tier"] == 3 and view["medical_tier"] == 5
    kinds = [entry["kind"] for entry in view["timeline"]]
    story = ["verified", "notice_accepted", "drafted", "document_uploaded", "submitted", "review_opened", "approved"]
    positions = [kinds.index(k) for k in story]
    assert positions == sorted(positions), kinds
    assert kinds.count("approved") == 1 and "sms_sent" in kinds

    url = f"/v1/applications/{application_id}/registration-form.pdf"
    unread = person.enrollment.get(url, headers=person.auth)
    assert unread.status_code == 409 and unread.json()["code"] == "agency_notice_not_read", unread.text
    view = person.read_agency_notice(application_id)
    assert "agency_notice_accepted" in [entry["kind"] for entry in view["timeline"]]
    pdf = person.enrollment.get(url, headers=person.auth)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "陈静" in text and "常州市劳动事务代理申请登记表" in text.replace(" ", "")
    assert f"版本：{view['agency_notice_version']}" in text.replace(" ", "")


def test_rejected_then_corrected_resubmitted_and_approved(system: dict[str, ServiceProcess]) -> None:
    person = Person(system, "周强", date(1985, 11, 2), male=True)
    person.register_and_verify()
    application_id = person.apply(
        pension_tier=1, medical_tier=None, household_kind="jiangsu_resident",
        household_region_code="320102", residence_district_code="320412",
    )  # fmt: skip
    person.upload(application_id, "id_card_front", PNG, "front.png")
    person.upload(application_id, "id_card_back", PNG, "back.png")
    person.upload(application_id, "residence_permit", PDF, "permit.pdf")
    person.submit(application_id)

    reviewer, operator = staff(system, "reviewer"), staff(system, "operator")
    first = pending_case(system, reviewer, application_id, attempt=1)
    reason = {"code": "documents_unreadable", "text": "身份证反面照片模糊"}
    decide(system, reviewer, first["case_id"], {"decision": "rejected", "reasons": [reason]})
    [rejected_sms] = sms_for(system, operator, person.user_id, 1)
    assert "审核不通过" in rejected_sms["text"] and "身份证反面照片模糊" in rejected_sms["text"]
    assert "12333" in rejected_sms["text"]
    view = person.wait_for_status(application_id, "rejected", notified=True)
    assert any("身份证反面照片模糊" in r["text"] for r in view["review_reasons"])

    person.upload(application_id, "id_card_back", JPEG, "back-clear.jpg")  # the correction
    person.submit(application_id)
    second = pending_case(system, reviewer, application_id, attempt=2)
    assert second["case_id"] != first["case_id"]
    decide(system, reviewer, second["case_id"], {"decision": "approved"})
    messages = sms_for(system, operator, person.user_id, 2)
    assert sum("审核通过" in m["text"] for m in messages) == 1
    assert person.wait_for_status(application_id, "approved", notified=True)["attempt"] == 2
