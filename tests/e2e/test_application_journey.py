"""The application journey of the guide, every service a real process over the real broker and
database: verify → apply → upload → submit → case opened → decide → SMS → status → PDF; and
reject → SMS with the reason → correct → resubmit → approve."""

import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from tests.support.applicant import (
    JPEG,
    PDF,
    PNG,
    Person,
    decide,
    pending_case,
    running_system,
    sms_for,
    staff,
    upload_changzhou_documents,
)
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def system(e2e_env: dict[str, str], log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    with running_system(e2e_env, log_dir, "e2e") as system:
        yield system


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
