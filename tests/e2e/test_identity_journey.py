"""A new user, as the phone app does it: register, log in, verify; then a plain Kafka consumer
reading identity.events from the beginning sees UserVerified with the full envelope, its
personal fields sealed."""

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.applicant import IDENTITY_TEST_ENV, texted_code
from tests.support.infra import read_topic, topic, topic_size
from tests.support.people import id_number
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def identity(e2e_env: dict[str, str], log_dir: Path) -> Iterator[ServiceProcess]:
    env = {**e2e_env, **IDENTITY_TEST_ENV, "IDENTITY_CODE_SENDER": "local_sink"}  # no notify here
    service = ServiceProcess("identity", env, log_dir).start()
    yield service
    service.stop()


def test_register_login_verify_then_user_verified_is_on_the_topic(identity: ServiceProcess) -> None:
    http = httpx.Client(base_url=identity.url, timeout=10)
    phone = f"139{abs(hash(identity.url)) % 10**8:08d}"
    asked = http.post("/v1/phone-codes", json={"phone": phone, "purpose": "register"})
    assert asked.status_code == 202, asked.text
    code = texted_code({"identity": identity}, phone)
    created = http.post("/v1/users", json={"phone": phone, "password": "s3cret-pass", "code": code})
    assert created.status_code == 201, created.text
    user_id = created.json()["user_id"]

    session = http.post("/v1/sessions", json={"phone": phone, "password": "s3cret-pass"})
    assert session.status_code == 201 and session.json()["role"] == "applicant"
    auth = {"Authorization": f"Bearer {session.json()['access_token']}"}

    number = id_number(date(1988, 6, 15), male=False, seq=abs(hash(user_id)) % 400)
    verified = http.post(f"/v1/users/{user_id}/verification", json={"name": "李四", "id_number": number}, headers=auth)
    assert verified.status_code == 201, verified.text
    assert verified.json()["gender"] == "female" and verified.json()["birth_date"] == "1988-06-15"

    again = http.post(f"/v1/users/{user_id}/verification", json={"name": "李四", "id_number": number}, headers=auth)
    assert again.status_code == 409 and again.json()["code"] == "already_verified"
    assert again.headers["content-type"].startswith("application/problem+json")

    async def find() -> dict[str, Any]:
        for _ in range(50):
            records = await read_topic(
                topic("identity.events"), expect=await topic_size(topic("identity.events")), timeout=10
            )
            for r in records:
                body = json.loads(r.value)  # type: ignore[attr-defined]
                if body["event_type"] == "UserVerified" and body["data"]["user_id"] == user_id:
                    assert r.key == f"user-{user_id}".encode()  # type: ignore[attr-defined]
                    assert dict(r.headers)["event_type"] == b"UserVerified"  # type: ignore[attr-defined]
                    return body  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)
        raise AssertionError("UserVerified never reached identity.events")

    body = asyncio.run(find())
    assert set(body) == {
        "event_id", "event_type", "schema_version", "stream_id", "stream_version", "occurred_at",
        "producer", "correlation_id", "causation_id", "data",
    }  # fmt: skip
    assert body["producer"] == "identity" and body["stream_version"] == 2 and body["schema_version"] == 2
    # docs/personal-data.md: the name and birth date are sealed, the ID number masked, no region code
    raw = json.dumps(body, ensure_ascii=False)
    for clear in (number, number[:6], "李四", "1988-06-15", "19880615"):
        assert clear not in raw, clear
    assert body["data"]["personal"]["alg"] == "A256GCM" and body["data"]["personal"]["key_id"] == user_id
    assert body["data"]["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    log = (Path(identity.log_dir) / "identity.log").read_text()
    assert number not in log and phone not in log
