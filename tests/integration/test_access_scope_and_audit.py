"""Issue 9, "Scope", "Documents" and "Access audit", over HTTP on the real database and broker:
staff see an application only once submitted and, for a reviewer bound to an agency, only its
agency's; an upload is refused before its body is read; documents are cleaned and served as
sandboxed attachments; staff reads and review decisions land in the append-only audit trail."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from kernel import audit
from kernel.auth import Principal
from tests.integration import test_enrollment_api, test_review_cases
from tests.integration.test_enrollment_api import (
    Enrollment,
    accept_agency_notice,
    decide,
    ready_application,
    seed_person,
    upload,
    wait_status,
)
from tests.integration.test_review_cases import Review, submission
from tests.support import documents
from tests.support.tokens import as_role, bearer

# APPLICATION in test_enrollment_api lives in 新北区 (320411): its agency is 320411.
IN_SCOPE, OUT_OF_SCOPE = "320411", "320402"
# The services in-process, as their own tests run them.
enrollment = test_enrollment_api.enrollment
review = test_review_cases.review


async def trail(pool: asyncpg.Pool, person_id: UUID) -> list[audit.AuditEntry]:
    return await audit.entries(pool, person_id=person_id)


async def submitted_application(e: Enrollment) -> tuple[UUID, str]:
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)
    answer = await e.http.post(f"/v1/applications/{app_id}/submit", headers=e.auth(user_id))
    assert answer.status_code == 200, answer.text
    return user_id, app_id


async def test_staff_see_a_submitted_application_only_within_their_agency(enrollment: Enrollment) -> None:
    e = enrollment
    user_id, app_id = await submitted_application(e)
    url = f"/v1/applications/{app_id}"
    outsider = as_role("reviewer", scope=OUT_OF_SCOPE)
    for path in ("", "/documents/id_card_front", "/registration-form.pdf"):
        refused = await e.http.get(url + path, headers=outsider)
        assert (refused.status_code, refused.json()["code"]) == (403, "not_your_agency"), (path, refused.text)
    for staff in (as_role("reviewer", scope=IN_SCOPE), as_role("reviewer"), as_role("operator")):
        assert (await e.http.get(url, headers=staff)).status_code == 200
        assert (await e.http.get(f"{url}/documents/id_card_front", headers=staff)).status_code == 200
        early = await e.http.get(f"{url}/registration-form.pdf", headers=staff)
        assert (early.status_code, early.json()["code"]) == (409, "not_approved")  # in scope: on to the next rule

    # once review's case names the agency, that is the agency (here 320411 again), and the form
    await decide(e, user_id, app_id, 1, "approved")
    await wait_status(e, user_id, app_id, "approved", 1)
    version = (await e.http.get("/v1/agency-notice")).json()["version"]
    assert (await accept_agency_notice(e, user_id, app_id, version)).status_code == 200
    refused = await e.http.get(f"{url}/registration-form.pdf", headers=outsider)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_your_agency")
    reviewer_id = uuid4()
    form = await e.http.get(f"{url}/registration-form.pdf", headers=as_role("reviewer", reviewer_id, IN_SCOPE))
    assert form.status_code == 200 and form.content.startswith(b"%PDF")
    assert form.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    assert form.headers["content-security-policy"] == "sandbox"
    assert form.headers["x-content-type-options"] == "nosniff"
    printed = [x for x in await trail(e.runtime.pool, user_id) if x.action == "registration_form.read"]
    assert [(x.actor_id, x.actor_role, x.detail["application_id"]) for x in printed] == [
        (reviewer_id, "reviewer", app_id)
    ]


async def test_staff_do_not_see_a_draft(enrollment: Enrollment) -> None:
    e = enrollment
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)  # documents uploaded, never submitted
    url = f"/v1/applications/{app_id}"
    for staff in (as_role("operator"), as_role("reviewer"), as_role("reviewer", scope=IN_SCOPE)):
        for path in ("", "/documents/id_card_front", "/registration-form.pdf"):
            refused = await e.http.get(url + path, headers=staff)
            assert (refused.status_code, refused.json()["code"]) == (404, "application_not_found"), path
    assert (await e.http.get(f"{url}/documents/id_card_front", headers=e.auth(user_id))).status_code == 200
    assert await trail(e.runtime.pool, user_id) == []  # the owner's own reads are not audited


class CountingBody:
    """A multipart body of `total` bytes sent in small chunks, counting what the server pulled."""

    BOUNDARY = "x-boundary-7d1"

    def __init__(self, total: int, chunk: int = 1024) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}"}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = (
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        self.pulled += len(head)
        yield head
        while self.pulled < self.total:
            self.pulled += self.chunk
            yield b"\xff" * self.chunk


async def test_an_upload_is_refused_before_its_body_is_read(enrollment: Enrollment) -> None:
    e = enrollment
    user_id, app_id = await submitted_application(e)
    url = f"/v1/applications/{app_id}/documents/id_card_front"
    hundred_mb = 100 * 1024 * 1024

    stranger = CountingBody(hundred_mb)  # chunked: no Content-Length to judge by
    answer = await e.http.put(url, content=stranger, headers={**stranger.headers, **as_role("applicant")})
    assert (answer.status_code, answer.json()["code"]) == (403, "not_your_application")
    assert stranger.pulled <= 4 * 1024, stranger.pulled

    late = CountingBody(hundred_mb)  # the owner, but the application is submitted already
    answer = await e.http.put(url, content=late, headers={**late.headers, **e.auth(user_id)})
    assert (answer.status_code, answer.json()["code"]) == (409, "not_editable")
    assert late.pulled <= 4 * 1024, late.pulled


async def test_the_owner_s_chunked_upload_stops_at_the_limit(enrollment: Enrollment) -> None:
    e = enrollment
    user_id = await seed_person(e)
    created = await e.http.post(
        "/v1/applications",
        json={"notice_version": "2020-12", "pension_tier": 3, "medical_tier": 5, "household_kind": "changzhou",
              "household_region_code": "320402", "residence_district_code": "320411"},
        headers=e.auth(user_id),
    )  # fmt: skip
    app_id = created.json()["application_id"]
    body = CountingBody(100 * 1024 * 1024, chunk=16 * 1024)
    answer = await e.http.put(
        f"/v1/applications/{app_id}/documents/id_card_front", content=body, headers={**body.headers, **e.auth(user_id)}
    )
    assert (answer.status_code, answer.json()["code"]) == (413, "document_too_large")
    assert body.pulled <= e.settings.enrollment_document_max_bytes + 256 * 1024, body.pulled


async def test_documents_are_cleaned_and_served_as_sandboxed_attachments(enrollment: Enrollment) -> None:
    e = enrollment
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)
    url = f"/v1/applications/{app_id}/documents/id_card_front"

    for hostile in (
        documents.FAKE_JPEG,
        documents.pdf_with_open_action_javascript(),
        documents.pdf_with_embedded_file(),
    ):
        refused = await upload(e, user_id, app_id, "id_card_front", hostile)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_document"), refused.text

    photo = documents.jpeg()
    stored = await upload(e, user_id, app_id, "id_card_front", photo)
    assert stored.status_code == 200 and stored.json()["content_type"] == "image/jpeg"
    got = await e.http.get(url, headers=e.auth(user_id))
    assert got.status_code == 200 and got.content != photo
    assert documents.EXIF_MAKE.encode() not in got.content and b"Exif" not in got.content
    assert got.content.startswith(b"\xff\xd8") and stored.json()["size_bytes"] == len(got.content)
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''id_card_front.jpg"
    assert got.headers["content-security-policy"] == "sandbox"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in got.headers["cache-control"]


async def test_staff_reads_of_documents_are_audited_and_the_trail_cannot_be_changed(enrollment: Enrollment) -> None:
    e = enrollment
    user_id, app_id = await submitted_application(e)
    url = f"/v1/applications/{app_id}/documents/id_card_back"
    operator_id = uuid4()
    assert (await e.http.get(url, headers=e.auth(user_id))).status_code == 200  # the owner: not recorded
    assert (await e.http.get(url, headers=as_role("operator", operator_id))).status_code == 200
    outsider = await e.http.get(url, headers=as_role("reviewer", scope=OUT_OF_SCOPE))
    assert outsider.status_code == 403  # refused: nothing was read, nothing recorded

    [entry] = await trail(e.runtime.pool, user_id)
    assert (entry.actor_id, entry.actor_role, entry.action) == (operator_id, "operator", "document.read")
    assert entry.detail["application_id"] == app_id and entry.detail["kind"] == "id_card_back"
    assert entry.client  # the caller's address (httpx's ASGI transport says 127.0.0.1)
    assert [x.action for x in await audit.entries(e.runtime.pool, actor_id=operator_id)] == ["document.read"]

    # enrollment's own role (the schema's owner) can neither change nor remove an entry
    pool = e.runtime.pool
    for statement in (
        "UPDATE audit_trail SET actor_id = NULL",
        "DELETE FROM audit_trail",
        "TRUNCATE audit_trail",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement)
    assert len(await trail(pool, user_id)) == 1


async def test_review_decisions_and_case_views_are_audited(review: Review) -> None:
    envelope = await submission(review, residence_district_code="320411")
    async with review.runtime.pool.acquire() as conn, conn.transaction():
        await review.handlers.on_enrollment_submitted(conn, envelope)
    applicant_id = UUID(str(envelope.data["applicant_id"]))
    case_id = await review.runtime.pool.fetchval(
        "SELECT case_id FROM cases WHERE application_id = $1", UUID(str(envelope.data["application_id"]))
    )
    reviewer_id = uuid4()
    reviewer = bearer(Principal(reviewer_id, "reviewer", "320411"))
    viewed = await review.http.get(f"/v1/cases/{case_id}", headers=reviewer)
    assert viewed.status_code == 200 and viewed.json()["applicant"]["name"] == "张三"  # in clear: audited
    refused = await review.http.get(f"/v1/cases/{case_id}", headers=as_role("reviewer", scope=OUT_OF_SCOPE))
    assert refused.status_code == 403
    decided = await review.http.post(
        f"/v1/cases/{case_id}/decision",
        json={"decision": "rejected", "reasons": [{"code": "documents_unreadable"}]},
        headers=reviewer,
    )
    assert decided.status_code == 201, decided.text

    entries = await audit.entries(review.runtime.pool, person_id=applicant_id)
    summary: list[tuple[Any, ...]] = [(x.action, x.actor_id, x.detail["case_id"]) for x in entries]
    assert summary == [("case.decided", reviewer_id, str(case_id)), ("case.read", reviewer_id, str(case_id))]
    assert entries[0].detail["decision"] == "rejected" and entries[0].detail["reasons"] == ["documents_unreadable"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await review.runtime.pool.execute("DELETE FROM audit_trail WHERE action = 'case.decided'")


async def test_an_uploaded_image_s_sha256_is_that_of_the_stored_file(enrollment: Enrollment) -> None:
    """What review shows (and an auditor compares) is the hash of what is served."""
    import hashlib

    e = enrollment
    user_id = await seed_person(e)
    app_id = await ready_application(e, user_id)
    stored = (await upload(e, user_id, app_id, "id_card_back", documents.png())).json()
    served = await e.http.get(f"/v1/applications/{app_id}/documents/id_card_back", headers=e.auth(user_id))
    assert stored["sha256"] == hashlib.sha256(served.content).hexdigest()
