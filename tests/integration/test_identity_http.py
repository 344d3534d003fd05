"""identity's HTTP surface in-process, on the real database and broker: every refusal is a
problem-details answer with a stable code, never a 500."""

from collections.abc import AsyncIterator
from datetime import date
from uuid import uuid4

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from kernel.auth import Principal, PublicKeys, read_token
from kernel.problems import Refused
from kernel.runtime import ServiceRuntime
from kernel.server import exposition
from services.identity.app import build
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from tests.support.apps import isolated, running
from tests.support.identity import TEST_SETTINGS, app_pool, register_through, texted_code
from tests.support.people import id_number
from tests.support.tokens import bearer

PASSWORD = "s3cret-pass"


@pytest.fixture
def identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[FastAPI, ServiceRuntime]:
    deny = tmp_path_factory.mktemp("deny") / "deny.txt"
    deny.write_text(id_number(date(1970, 1, 1), seq=9) + "  # a stolen identity\n")
    settings = IdentitySettings(**isolated("identity"), **TEST_SETTINGS, identity_verification_deny_list=deny)  # type: ignore[arg-type]
    return build(settings)


# Correlation ids are taken only as UUIDs (kernel.asgi).
TEST_CORRELATION_ID = "5d0c6f3e-2b1a-4c9e-9f3d-7a8b6c5d4e3f"


@pytest.fixture
async def client(identity: tuple[FastAPI, ServiceRuntime]) -> AsyncIterator[httpx.AsyncClient]:
    app, runtime = identity
    async with running(app, runtime) as client:
        client.headers["X-Correlation-ID"] = TEST_CORRELATION_ID
        yield client


async def register(client: httpx.AsyncClient, phone: str) -> tuple[str, dict[str, str]]:
    created = await register_through(client, phone)  # with the code texted to the phone
    assert created.status_code == 201, created.text
    session = await client.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert session.status_code == 201, session.text
    return created.json()["user_id"], {"Authorization": f"Bearer {session.json()['access_token']}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), "detail is for people, in Chinese"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"phone": "12345", "password": PASSWORD, "code": "123456"}, 422, "invalid_phone"),
        ({"phone": "+1 415 555 0100", "password": PASSWORD, "code": "123456"}, 422, "invalid_phone"),
        ({"phone": "13800138001", "password": "short", "code": "123456"}, 422, "weak_password"),
        ({"phone": "13800138001", "password": PASSWORD, "code": "123456"}, 422, "invalid_code"),  # none was sent
        ({"phone": "13800138001", "password": PASSWORD}, 422, "invalid_request"),  # no code
        ({"phone": "13800138001", "password": PASSWORD, "code": "12345"}, 422, "invalid_request"),
        ({"phone": "13800138001"}, 422, "invalid_request"),
        ({"phone": 13800138001, "password": PASSWORD, "code": "123456"}, 422, "invalid_request"),
        ({"phone": "13800138001", "password": PASSWORD, "code": "123456", "role": "operator"}, 422, "invalid_request"),
        ([], 422, "invalid_request"),
    ],
)
async def test_registration_refusals(client: httpx.AsyncClient, body: object, status: int, code: str) -> None:
    assert_problem(await client.post("/v1/users", json=body), status, code)


async def test_malformed_json_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/users", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422, "invalid_request")


async def test_a_registered_phone_gets_no_code_and_no_phone_taken(client: httpx.AsyncClient) -> None:
    """Registering a phone that has an account: the code request answers as for any phone, the phone
    gets a notice instead of a code, and no code registers it again (never 409 phone_taken)."""
    await register(client, "13800138002")
    asked = await client.post("/v1/phone-codes", json={"phone": "+86 138 0013 8002", "purpose": "register"})
    assert asked.status_code == 202
    texts = await app_pool(client).fetch("SELECT template FROM code_sink WHERE phone = '+8613800138002' ORDER BY id")
    assert [t["template"] for t in texts] == ["one_time_code", "phone_registered"]
    used = await texted_code(app_pool(client), "13800138002")  # the first code, spent on the registration
    again = await client.post("/v1/users", json={"phone": "+86 138 0013 8002", "password": PASSWORD, "code": used})
    assert_problem(again, 422, "invalid_code")


async def test_login_refusals_do_not_tell_which_part_was_wrong(client: httpx.AsyncClient) -> None:
    await register(client, "13800138003")
    wrong_password = await client.post("/v1/sessions", json={"phone": "13800138003", "password": "wrong-pass-1"})
    unknown_phone = await client.post("/v1/sessions", json={"phone": "13800138999", "password": PASSWORD})
    assert_problem(wrong_password, 401, "invalid_credentials")
    assert_problem(unknown_phone, 401, "invalid_credentials")
    assert wrong_password.json()["detail"] == unknown_phone.json()["detail"]


async def test_verification_refusals(client: httpx.AsyncClient) -> None:
    user_id, auth = await register(client, "13800138004")
    other_id, other_auth = await register(client, "13800138005")
    good = id_number(date(1990, 2, 3), seq=4)
    url = f"/v1/users/{user_id}/verification"
    assert_problem(await client.post(url, json={"name": "王五", "id_number": good}), 401, "authentication_required")
    bad_token = {"Authorization": "Bearer not-a-jwt"}
    assert_problem(
        await client.post(url, json={"name": "王五", "id_number": good}, headers=bad_token), 401, "invalid_token"
    )
    assert_problem(
        await client.post(url, json={"name": "王五", "id_number": good}, headers=other_auth), 403, "not_your_account"
    )
    bad_number = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert_problem(
        await client.post(url, json={"name": "王五", "id_number": bad_number}, headers=auth), 422, "invalid_id_number"
    )
    assert_problem(await client.post(url, json={"name": "Wang", "id_number": good}, headers=auth), 422, "invalid_name")
    denied = id_number(date(1970, 1, 1), seq=9)
    refused = await client.post(url, json={"name": "王五", "id_number": denied}, headers=auth)
    assert_problem(refused, 422, "verification_failed")
    assert_problem(
        await client.post("/v1/users/not-a-uuid/verification", json={}, headers=auth), 422, "invalid_request"
    )

    verified = await client.post(url, json={"name": "王五", "id_number": good}, headers=auth)
    assert verified.status_code == 201 and verified.json()["verified"] is True
    again = await client.post(
        f"/v1/users/{other_id}/verification", json={"name": "王五", "id_number": good}, headers=other_auth
    )
    assert_problem(again, 422, "verification_failed")  # bound to another account: told like any refusal
    assert again.json()["detail"] == refused.json()["detail"]
    assert_problem(
        await client.post(url, json={"name": "王五", "id_number": good}, headers=auth), 409, "already_verified"
    )


async def test_unknown_user_and_unknown_route(client: httpx.AsyncClient) -> None:
    operator = bearer(Principal(uuid4(), "operator"), 60)
    assert_problem(await client.get(f"/v1/users/{uuid4()}", headers=operator), 404, "user_not_found")
    assert_problem(await client.get("/v1/nowhere"), 404, "not_found")


async def test_health_metrics_and_correlation(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "kafka": True}
    assert "flexenroll_relay_events_published_total" in exposition()
    assert (await client.get("/healthz")).headers["X-Correlation-ID"] == TEST_CORRELATION_ID


async def test_a_staff_account_with_an_agency_gets_it_in_its_token_applicants_never(
    identity: tuple[FastAPI, ServiceRuntime], client: httpx.AsyncClient
) -> None:
    """What `flexctl staff add --agency` does, through identity's service layer."""
    app, runtime = identity
    svc: IdentityService = app.state.identity

    async def session(phone: str) -> dict[str, object]:
        answer = await client.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def claims(token: object) -> dict[str, object]:
        return dict(jwt.decode(str(token), options={"verify_signature": False}))

    bound_id = await svc.register("13800138010", PASSWORD, "reviewer", "test-corr", agency_code="320411")
    bound = await session("13800138010")
    assert bound["role"] == "reviewer" and bound["agency_code"] == "320411"
    assert claims(bound["access_token"])["scope"] == "320411"
    assert read_token(str(bound["access_token"]), _keys(), "review") == Principal(bound_id, "reviewer", scope="320411")

    await svc.register("13800138011", PASSWORD, "reviewer", "test-corr")  # city-level
    await svc.register("13800138012", PASSWORD, "operator", "test-corr")
    applicant_id, _ = await register(client, "13800138013")
    for phone in ("13800138011", "13800138012", "13800138013"):
        plain = await session(phone)
        assert plain["agency_code"] is None and "scope" not in claims(plain["access_token"])

    # Only agencies of the reference directory (contracts/reference/districts.toml) exist.
    for role, agency, code in [("reviewer", "32041", "unknown_agency"), ("reviewer", "abcdef", "unknown_agency"),
                               ("reviewer", "110101", "unknown_agency"), ("reviewer", "320499", "unknown_agency"),
                               ("operator", "320411", "agency_not_allowed"),
                               ("applicant", "320411", "agency_not_allowed")]:  # fmt: skip
        with pytest.raises(Refused) as refused:
            await svc.register("13800138014", PASSWORD, role, "test-corr", agency_code=agency)  # type: ignore[arg-type]
        assert refused.value.code == code
    assert_problem(await client.post("/v1/sessions", json={"phone": "13800138014", "password": PASSWORD}), 401,
                   "invalid_credentials")  # fmt: skip

    # The table holds the rules too, whatever code writes to it; the public event has no agency.
    with pytest.raises(asyncpg.CheckViolationError):
        await runtime.pool.execute("UPDATE credentials SET agency_code = '320411' WHERE user_id = $1", applicant_id)
    with pytest.raises(asyncpg.CheckViolationError):
        await runtime.pool.execute("UPDATE credentials SET agency_code = '3204' WHERE user_id = $1", bound_id)
    registered = await runtime.pool.fetchval(
        "SELECT data FROM events WHERE stream_id = $1 AND event_type = 'UserRegistered'", f"user-{bound_id}"
    )
    assert "agency" not in str(registered) and "320411" not in str(registered)


def _keys() -> PublicKeys:
    return IdentitySettings().public_keys()
