"""Tokens against a determined outsider (issue 9, "Tokens"): identity alone signs (Ed25519), every
service verifies with the public key and only tokens naming it in `aud`; a disabled account's token
and a token older than the account's version are refused everywhere within the refresh period."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from fastapi import FastAPI

from kernel.auth import AUDIENCES, CurrentPrincipal, Principal, issue_token
from kernel.eventstore import new_correlation_id
from kernel.problems import Unauthorized
from kernel.revocation import Revocation, RevocationList, refresh_revocations
from kernel.runtime import ServiceRuntime
from kernel.settings import ServiceSettings
from services.enrollment.app import build as build_enrollment
from services.identity.app import build as build_identity
from services.notify.app import build as build_notify
from services.payment.app import build as build_payment
from services.review.app import build as build_review
from tests.support.apps import isolated
from tests.support.identity import RunningIdentity, running_identity, unique_phone
from tests.support.infra import drop_schemas
from tests.support.people import id_number
from tests.support.tokens import DEV_KEY, foreign_key, token

PASSWORD = "s3cret-pass-9"
# A route of each service that needs a token and reads nothing before checking it.
PROTECTED = {
    "identity": f"/v1/users/{uuid4()}",
    "enrollment": "/v1/applications",
    "review": "/v1/cases",
    "payment": "/v1/refunds",
    "notify": "/v1/sms",
}
BUILDERS: dict[str, Callable[[], tuple[FastAPI, ServiceRuntime]]] = {
    "identity": build_identity,
    "enrollment": build_enrollment,
    "review": build_review,
    "payment": build_payment,
    "notify": build_notify,
}


def _forged(sub: UUID) -> dict[str, str]:
    """Operator tokens an outsider could make: with the old shared HS256 secret (kid or not), with
    another Ed25519 key (under the real kid, or its own), unsigned."""
    claims: dict[str, Any] = {
        "sub": str(sub),
        "role": "operator",
        "aud": list(AUDIENCES["operator"]),
        "ver": 99,
        "iss": "flexenroll-identity",
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    old_secret = "local-jwt-flexenroll-not-a-secret"  # the JWT_SECRET every service shared before
    forger = foreign_key()
    return {
        "hs256_old_secret": jwt.encode(claims, old_secret, algorithm="HS256"),
        "hs256_with_real_kid": jwt.encode(claims, old_secret, algorithm="HS256", headers={"kid": DEV_KEY.kid}),
        "other_key_real_kid": jwt.encode(claims, forger.private, algorithm="EdDSA", headers={"kid": DEV_KEY.kid}),
        "other_key_own_kid": jwt.encode(claims, forger.private, algorithm="EdDSA", headers={"kid": forger.kid}),
        "unsigned": jwt.encode(claims, "", algorithm="none", headers={"kid": DEV_KEY.kid}),
    }


@pytest.mark.parametrize("service", list(PROTECTED))
async def test_forged_tokens_and_tokens_for_other_services_are_401(service: str) -> None:
    app, runtime = BUILDERS[service]()  # not started: every refusal happens before the database
    # The control: a route of the app that only needs the token, so that a genuine one gets a 200
    # without a database (identity's own guard reads its table: an empty list stands in for it).
    runtime.token_guard = RevocationList()

    @app.get("/probe")
    async def probe(principal: CurrentPrincipal) -> dict[str, str]:
        return {"role": principal.role}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:

        async def status(bearer: str, path: str = PROTECTED[service]) -> tuple[int, str | None]:
            answer = await client.get(path, headers={"Authorization": f"Bearer {bearer}"})
            return answer.status_code, answer.json().get("code")

        for name, forged in _forged(uuid4()).items():
            assert await status(forged) == (401, "invalid_token"), name
            assert await status(forged, "/probe") == (401, "invalid_token"), name
        for role, audience in AUDIENCES.items():
            genuine = token(Principal(uuid4(), role))
            if service in audience:
                assert await status(genuine, "/probe") == (200, None), role
            else:
                assert await status(genuine) == (401, "invalid_token"), role
                assert await status(genuine, "/probe") == (401, "invalid_token"), role
        # A genuine signature on a token naming no service of ours at all.
        claims = jwt.decode(token(Principal(uuid4(), "operator")), options={"verify_signature": False})
        elsewhere = jwt.encode({**claims, "aud": ["elsewhere"]}, DEV_KEY.private, "EdDSA", headers={"kid": DEV_KEY.kid})
        assert await status(elsewhere) == (401, "invalid_token")


async def test_identity_serves_its_public_keys_and_signs_with_kid_aud_and_ver() -> None:
    async with running_identity() as identity:
        jwks = (await identity.client.get("/.well-known/jwks.json")).json()
        assert [k["kid"] for k in jwks["keys"]] == [DEV_KEY.kid]
        assert jwks["keys"][0]["kty"] == "OKP" and "d" not in jwks["keys"][0]  # never the private part
        user_id, session = await _staff(identity, "reviewer")
        header = jwt.get_unverified_header(session)
        claims = jwt.decode(session, options={"verify_signature": False})
        assert header["alg"] == "EdDSA" and header["kid"] == DEV_KEY.kid
        assert claims["aud"] == ["identity", "enrollment", "review", "web"] and claims["ver"] == 0
        assert claims["sub"] == str(user_id) and claims["role"] == "reviewer" and claims["iss"] == "flexenroll-identity"


async def _staff(identity: RunningIdentity, role: str = "reviewer") -> tuple[UUID, str]:
    phone = unique_phone()
    number = id_number(date(1975, 1, 1) + timedelta(days=uuid4().int % 9000), region="320411", seq=uuid4().int % 400)
    user_id = await identity.service.add_staff(phone, PASSWORD, role, "王审核", number, new_correlation_id())  # type: ignore[arg-type]
    return user_id, await _login(identity, phone)


async def _login(identity: RunningIdentity, phone: str, password: str = PASSWORD) -> str:
    answer = await identity.client.post("/v1/sessions", json={"phone": phone, "password": password})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_token"])


async def _phone_of(identity: RunningIdentity, user_id: UUID) -> str:
    phone: str = await identity.runtime.pool.fetchval("SELECT phone FROM credentials WHERE user_id = $1", user_id)
    return phone


class OtherService:
    """A service (review's settings) started in-process with a route that needs a token, whose
    revocation list is refreshed from the running identity every `period` seconds."""

    def __init__(self, identity: RunningIdentity, period: float) -> None:
        settings = ServiceSettings(
            **isolated("review"),  # type: ignore[arg-type]
            service="review",
            identity_url="http://identity.test",
            token_revocations_refresh_seconds=period,
            relay_enabled=False,
            consumers_enabled=False,
        )
        self.runtime = ServiceRuntime(settings, revocations_transport=httpx.ASGITransport(app=identity.app))
        self.app = self.runtime.create_app("a service")

        @self.app.get("/whoami")
        async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
            return {"user_id": str(principal.user_id)}

    async def answer(self, session: str) -> tuple[int, str | None]:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            got = await client.get("/whoami", headers={"Authorization": f"Bearer {session}"})
        return got.status_code, got.json().get("code")


@pytest.fixture
async def other_and_identity() -> AsyncIterator[tuple[OtherService, RunningIdentity]]:
    async with running_identity() as identity:
        other = OtherService(identity, period=0.3)
        await other.runtime.start()
        try:
            yield other, identity
        finally:
            await other.runtime.stop()
            await drop_schemas(other.runtime.settings.db_schema)


async def _within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """How long until `check` holds; fails after `seconds`."""
    start = asyncio.get_running_loop().time()
    while not await check():
        elapsed = asyncio.get_running_loop().time() - start
        assert elapsed < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.05)
    return asyncio.get_running_loop().time() - start


async def test_a_disabled_account_is_refused_everywhere_within_the_refresh_period(
    other_and_identity: tuple[OtherService, RunningIdentity],
) -> None:
    other, identity = other_and_identity
    user_id, session = await _staff(identity)
    bystander_id, bystander = await _staff(identity)
    me = f"/v1/staff/me/same-person/{uuid4()}"
    assert await other.answer(session) == (200, None)
    assert (await identity.client.get(me, headers={"Authorization": f"Bearer {session}"})).status_code == 200

    await identity.service.disable(user_id)
    # identity asks its own table: at once.
    refused = await identity.client.get(me, headers={"Authorization": f"Bearer {session}"})
    assert refused.status_code == 401 and refused.json()["code"] == "account_disabled"
    # Another service: once its copy is refreshed (every 0.3 s here; 20 s by default, under a minute).
    await _within(3.0, lambda: _is(other.answer(session), (401, "account_disabled")))
    assert await other.answer(bystander) == (200, None)  # nobody else is touched
    # No new token either.
    phone = await _phone_of(identity, user_id)
    login = await identity.client.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
    assert login.status_code == 401 and login.json()["code"] == "account_disabled"
    listed = (await identity.client.get("/v1/token-revocations")).json()["revocations"]
    assert {"user_id": str(user_id), "min_version": 1, "disabled": True} in listed
    assert str(bystander_id) not in {r["user_id"] for r in listed}  # only accounts ever revoked are listed

    # Enabled again: the old token stays revoked (disabling bumped the version); a new log-in works.
    await identity.service.enable(user_id)
    await _within(3.0, lambda: _is(other.answer(session), (401, "token_revoked")))
    fresh = await _login(identity, phone)
    assert jwt.decode(fresh, options={"verify_signature": False})["ver"] == 1
    assert await other.answer(fresh) == (200, None)


async def test_a_bumped_token_version_refuses_older_tokens(
    other_and_identity: tuple[OtherService, RunningIdentity],
) -> None:
    other, identity = other_and_identity
    user_id, before = await _staff(identity)
    phone = await _phone_of(identity, user_id)
    assert await other.answer(before) == (200, None)

    await identity.service.reset_password(user_id, "a-new-pass-77")
    await _within(3.0, lambda: _is(other.answer(before), (401, "token_revoked")))
    me = f"/v1/staff/me/same-person/{uuid4()}"
    at_identity = await identity.client.get(me, headers={"Authorization": f"Bearer {before}"})
    assert at_identity.status_code == 401 and at_identity.json()["code"] == "token_revoked"
    after = await _login(identity, phone, "a-new-pass-77")
    assert await other.answer(after) == (200, None)

    await identity.service.change_role(user_id, "operator")
    await _within(3.0, lambda: _is(other.answer(after), (401, "token_revoked")))
    operator = await _login(identity, phone, "a-new-pass-77")
    assert jwt.decode(operator, options={"verify_signature": False})["role"] == "operator"
    assert await other.answer(operator) == (200, None)
    # A token minted with a version above the account's (by nobody but identity) still passes: versions only rise.
    assert await other.answer(issue_token(Principal(user_id, "operator"), DEV_KEY, 60, version=5)) == (200, None)


async def _is(answer: Awaitable[tuple[int, str | None]], expected: tuple[int, str | None]) -> bool:
    return await answer == expected


async def test_the_list_survives_identity_being_away() -> None:
    """A failed refresh keeps the last good copy and is retried; a list never loaded judges by signature."""
    revocations = RevocationList()
    await revocations.check(uuid4(), 0)  # nothing known yet: accepted
    disabled = uuid4()
    calls = 0
    identity_back = False

    async def fetch() -> dict[UUID, Revocation]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {disabled: Revocation(1, True)}
        if not identity_back:
            raise httpx.ConnectError("identity is away")
        return {}  # enabled meanwhile

    task = asyncio.create_task(refresh_revocations(revocations, fetch, 0.02))
    try:
        await _within(2.0, lambda: _refused(revocations, disabled, "account_disabled"))
        await _within(2.0, lambda: _true(calls >= 4))  # three failed refreshes ...
        assert await _refused(revocations, disabled, "account_disabled")  # ... kept the last good copy
        identity_back = True
        await _within(2.0, lambda: _accepted(revocations, disabled))
    finally:
        task.cancel()


async def _true(value: bool) -> bool:
    return value


async def _refused(revocations: RevocationList, user_id: UUID, code: str) -> bool:
    try:
        await revocations.check(user_id, 5)
    except Unauthorized as refused:
        return refused.code == code
    return False


async def _accepted(revocations: RevocationList, user_id: UUID) -> bool:
    return not await _refused(revocations, user_id, "account_disabled")
