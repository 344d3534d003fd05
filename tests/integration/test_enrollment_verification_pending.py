"""A person who has just verified, whom enrollment has not heard of yet (the broker slow or away),
is told the truth: 503 `verification_pending` with Retry-After, not 422 `not_verified` (issue 10,
"Resilience bugs"). enrollment here consumes nothing, so identity's UserVerified never reaches it;
it asks identity, in-process, with the caller's own token."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.enrollment.app import build
from services.enrollment.settings import EnrollmentSettings
from services.enrollment.verification_check import RETRY_AFTER_SECONDS, VerificationCheck
from tests.support.identity import RunningIdentity, running_identity
from tests.support.infra import DATABASE_URL, KAFKA_BOOTSTRAP, drop_schemas, group_prefix, provision_schema, unique_name

APPLICATION = {
    "notice_version": "2020-12",
    "pension_tier": 3,
    "medical_tier": 5,
    "household_kind": "changzhou",
    "household_region_code": "320402",
    "residence_district_code": "320411",
}


@pytest.fixture
async def deaf_enrollment(tmp_path: Path) -> AsyncIterator[tuple[RunningIdentity, httpx.AsyncClient]]:
    settings = EnrollmentSettings(
        database_url=DATABASE_URL,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        schema_name=unique_name("enr"),
        consumer_group_prefix=group_prefix(),
        enrollment_blob_root=tmp_path / "blobs",
    )
    await provision_schema("enrollment", settings.db_schema)
    async with running_identity() as identity:
        check = VerificationCheck("http://identity.test", transport=httpx.ASGITransport(app=identity.app))
        app, runtime = build(settings, keys=identity.keys("enrollment"), verification_check=check)
        runtime.subscriptions = []  # deaf to identity.events: what a broker outage looks like from here
        await runtime.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://enrollment") as http:
                yield identity, http
        finally:
            await runtime.stop()
            await check.aclose()
            await drop_schemas(settings.db_schema)


async def test_verified_at_identity_but_not_yet_known_here_is_a_retryable_503(
    deaf_enrollment: tuple[RunningIdentity, httpx.AsyncClient],
) -> None:
    identity, enrollment = deaf_enrollment
    person = await identity.person(name="钱同步")
    answer = await enrollment.post("/v1/applications", json=APPLICATION, headers=person.auth)
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "verification_pending" and answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert answer.json()["retry_after"] == RETRY_AFTER_SECONDS


async def test_not_verified_at_identity_either_is_still_422(
    deaf_enrollment: tuple[RunningIdentity, httpx.AsyncClient],
) -> None:
    identity, enrollment = deaf_enrollment
    person = await identity.person(verified=False)
    answer = await enrollment.post("/v1/applications", json=APPLICATION, headers=person.auth)
    assert answer.status_code == 422 and answer.json()["code"] == "not_verified", answer.text
    assert "retry-after" not in answer.headers
