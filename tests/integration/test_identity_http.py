"""identity's HTTP surface in-process, on the real database and broker: every refusal is a
problem-details answer with a stable code, never a 500."""

from collections.abc import AsyncIterator
from datetime import date
from uuid import uuid4

import httpx
import pytest

from kernel.auth import Principal, issue_token
from services.identity.app import build
from services.identity.settings import IdentitySettings
from tests.support.apps import isolated, running
from tests.support.people import id_number

PASSWORD = "s3cret-pass"


@pytest.fixture
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    deny = tmp_path_factory.mktemp("deny") / "deny.txt"
    deny.write_text(id_number(date(1970, 1, 1), seq=9) + "  # a stolen identity\n")
    settings = IdentitySettings(**isolated("identity"), verification_deny_list=deny)  # type: ignore[arg-type]
    app, runtime = build(settings)
    async with running(app, runtime) as client:
        client.headers["X-Correlation-ID"] = "test-corr"
        yield client


async def register(client: httpx.AsyncClient, phone: str) -> tuple[str, dict[str, str]]:
    created = await client.post("/v1/users", json={"phone": phone, "password": PASSWORD})
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
        ({"phone": "12345", "password": PASSWORD}, 422, "invalid_phone"),
        ({"phone": "+1 415 555 0100", "password": PASSWORD}, 422, "invalid_phone"),
        ({"phone": "13800138001", "password": "short"}, 422, "weak_password"),
        ({"phone": "13800138001"}, 422, "invalid_request"),
        ({"phone": 13800138001, "password": PASSWORD}, 422, "invalid_request"),
        ({"phone": "13800138001", "password": PASSWORD, "role": "operator"}, 422, "invalid_request"),
        ([], 422, "invalid_request"),
    ],
)
async def test_registration_refusals(client: httpx.AsyncClient, body: object, status: int, code: str) -> None:
    assert_problem(await client.post("/v1/users", json=body), status, code)


async def test_malformed_json_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/users", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422, "invalid_request")


async def test_phone_registered_twice_is_a_conflict(client: httpx.AsyncClient) -> None:
    await register(client, "13800138002")
    assert_problem(
        await client.post("/v1/users", json={"phone": "+86 138 0013 8002", "password": PASSWORD}), 409, "phone_taken"
    )


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
    assert_problem(
        await client.post(url, json={"name": "王五", "id_number": denied}, headers=auth), 422, "identity_not_confirmed"
    )
    assert_problem(
        await client.post("/v1/users/not-a-uuid/verification", json={}, headers=auth), 422, "invalid_request"
    )

    verified = await client.post(url, json={"name": "王五", "id_number": good}, headers=auth)
    assert verified.status_code == 201 and verified.json()["verified"] is True
    again = await client.post(
        f"/v1/users/{other_id}/verification", json={"name": "王五", "id_number": good}, headers=other_auth
    )
    assert_problem(again, 409, "id_number_taken")
    assert_problem(
        await client.post(url, json={"name": "王五", "id_number": good}, headers=auth), 409, "already_verified"
    )


async def test_unknown_user_and_unknown_route(client: httpx.AsyncClient) -> None:
    operator = {"Authorization": "Bearer " + issue_token(Principal(uuid4(), "operator"), _secret(), 60)}
    assert_problem(await client.get(f"/v1/users/{uuid4()}", headers=operator), 404, "user_not_found")
    assert_problem(await client.get("/v1/nowhere"), 404, "not_found")


async def test_health_metrics_and_correlation(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "kafka": True}
    assert "flexenroll_relay_events_published_total" in (await client.get("/metrics")).text
    assert (await client.get("/healthz")).headers["X-Correlation-ID"] == "test-corr"


def _secret() -> str:
    return IdentitySettings().jwt_secret.get_secret_value()
