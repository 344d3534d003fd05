"""identity in-process for integration and end-to-end tests of the services that read sealed
personal data (docs/personal-data.md): a running identity on the real database and broker (its
relay publishes to the session's identity.events), people registered and verified through its
HTTP API, and `PersonKeys` clients bound to it, so a test opens sealed fields with identity's real
key endpoint and real keys.

    async with running_identity() as identity:
        person = await identity.person()
        keys = identity.keys("review")          # authenticates as review, as review's settings do
        fields = await keys.open(sealed, owner=person.user_id)
        await identity.erase(person.user_id)    # the key is gone, PersonErased is on the topic
"""

import asyncio
import concurrent.futures
import itertools
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from fastapi import FastAPI

from kernel.eventstore import new_correlation_id
from kernel.personal import PersonKeys
from kernel.runtime import ServiceRuntime
from kernel.settings import ServiceSettings
from services.identity.app import build
from services.identity.domain import normalize_mainland_mobile
from services.identity.service import Erasure, IdentityService
from services.identity.settings import IdentitySettings
from tests.support.apps import isolated, running
from tests.support.infra import DATABASE_URL, connect_as
from tests.support.people import id_number

PASSWORD = "s3cret-pass"
_SEQ = itertools.count(random.randrange(0, 300))  # ID-number sequences: distinct within a run


@dataclass(frozen=True)
class Person:
    """Someone registered (and, unless asked otherwise, verified) at the running identity, with
    the clear facts a test compares sealed data with."""

    user_id: UUID
    phone: str  # E.164
    password: str
    token: str
    name: str | None = None
    id_number: str | None = None
    birth_date: date | None = None
    gender: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_CODE = re.compile(r"验证码为(\d{6})")


async def texted_code(db: asyncpg.Pool | asyncpg.Connection, phone: str) -> str:
    """The 6-digit code last texted to `phone` (any form), read from identity's `code_sink`, the
    development stand-in for the phone (IDENTITY_CODE_SENDER=local_sink: TEST_SETTINGS)."""
    e164 = normalize_mainland_mobile(phone)
    text = await db.fetchval(
        "SELECT text FROM code_sink WHERE phone = $1 AND template = 'one_time_code' ORDER BY id DESC LIMIT 1", e164
    )
    assert text is not None, "no code was texted to this phone"
    found = _CODE.search(text)
    assert found is not None, text
    return found.group(1)


def texted_code_now(schema: str, phone: str, database_url: str = DATABASE_URL) -> str:
    """`texted_code` for synchronous code (also inside a running event loop: another thread),
    reading identity's schema `schema` as identity's role."""

    async def read() -> str:
        conn = await connect_as("identity", schema, database_url)
        try:
            return await texted_code(conn, phone)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, read()).result()


def app_of(client: httpx.AsyncClient) -> FastAPI:
    """The identity app an in-process client talks to (tests/support/apps.running)."""
    transport = client._transport  # the ASGI transport holds the app
    assert isinstance(transport, httpx.ASGITransport) and isinstance(transport.app, FastAPI)
    return transport.app


def app_pool(client: httpx.AsyncClient) -> asyncpg.Pool:
    """The pool of the identity app an in-process client talks to."""
    pool: asyncpg.Pool = app_of(client).state.runtime.pool
    return pool


async def register_through(client: httpx.AsyncClient, phone: str, password: str = PASSWORD) -> httpx.Response:
    """POST /v1/users as the phone app does it: ask a code (POST /v1/phone-codes), read it from the
    phone (identity's code_sink), register with it. The answer of POST /v1/users."""
    asked = await client.post("/v1/phone-codes", json={"phone": phone, "purpose": "register"})
    assert asked.status_code == 202, asked.text
    code = await texted_code(app_pool(client), phone)
    return await client.post("/v1/users", json={"phone": phone, "password": password, "code": code})


def unique_phone() -> str:
    """An E.164 mainland mobile number, random enough that tests sharing a schema do not collide."""
    return f"+86139{random.randrange(10**8):08d}"


@dataclass
class RunningIdentity:
    app: FastAPI
    runtime: ServiceRuntime
    client: httpx.AsyncClient
    _keys: list[PersonKeys] = field(default_factory=list)

    @property
    def service(self) -> IdentityService:
        svc: IdentityService = self.app.state.identity
        return svc

    @property
    def settings(self) -> IdentitySettings:
        settings = self.runtime.settings
        assert isinstance(settings, IdentitySettings)
        return settings

    async def code_for(self, phone: str) -> str:
        """Ask POST /v1/phone-codes for `phone` (any form) and read the code the phone received."""
        asked = await self.client.post("/v1/phone-codes", json={"phone": phone, "purpose": "register"})
        assert asked.status_code == 202, asked.text
        return await texted_code(self.runtime.pool, phone)

    async def register(self, phone: str | None = None, password: str = PASSWORD) -> Person:
        """An applicant account through POST /v1/users (its phone proven by the code texted through
        POST /v1/phone-codes), logged in through POST /v1/sessions."""
        phone = phone or unique_phone()
        code = await self.code_for(phone)
        created = await self.client.post("/v1/users", json={"phone": phone, "password": password, "code": code})
        assert created.status_code == 201, created.text
        session = await self.client.post("/v1/sessions", json={"phone": phone, "password": password})
        assert session.status_code == 201, session.text
        return Person(
            user_id=UUID(created.json()["user_id"]),
            phone=phone,
            password=password,
            token=session.json()["access_token"],
        )

    async def verify(
        self, person: Person, *, name: str = "张三", birth: date = date(1990, 3, 7), male: bool = True
    ) -> Person:
        """Real-name verification through POST /v1/users/{id}/verification."""
        number = id_number(birth, male=male, seq=next(_SEQ) % 400)
        answer = await self.client.post(
            f"/v1/users/{person.user_id}/verification", json={"name": name, "id_number": number}, headers=person.auth
        )
        assert answer.status_code == 201, answer.text
        return replace(person, name=name, id_number=number, birth_date=birth, gender="male" if male else "female")

    async def person(
        self,
        *,
        phone: str | None = None,
        name: str = "张三",
        birth: date = date(1990, 3, 7),
        male: bool = True,
        verified: bool = True,
    ) -> Person:
        """Register, log in and (by default) verify one person."""
        person = await self.register(phone)
        return await self.verify(person, name=name, birth=birth, male=male) if verified else person

    def keys(self, service: str = "enrollment", **kwargs: Any) -> PersonKeys:
        """A key client authenticating as `service` does by default (its shipped development token),
        talking to this identity in-process; closed when the identity stops."""
        keys = PersonKeys(
            ServiceSettings(service=service, identity_url="http://identity.test"),
            transport=httpx.ASGITransport(app=self.app),
            **kwargs,
        )
        self._keys.append(keys)
        return keys

    async def erase(self, user_id: UUID) -> Erasure:
        """What `flexctl person erase` does."""
        return await self.service.erase(user_id, new_correlation_id())


# Tests run many log-ins, registrations and code requests from one address within seconds: the
# throttles (services/identity/throttling.py) get room here, and the tests of throttling set their
# own limits. Codes go to identity's `code_sink` table (no notify runs in-process).
TEST_SETTINGS: dict[str, Any] = {
    "identity_code_sender": "local_sink",
    "identity_code_resend_window_seconds": 0,
    "identity_code_phone_limit": 1000,
    "identity_code_address_limit": 100_000,
    "identity_register_address_limit": 100_000,
    "identity_login_address_limit": 100_000,
    "identity_verify_address_limit": 100_000,
}


@asynccontextmanager
async def running_identity(**settings: Any) -> AsyncIterator[RunningIdentity]:
    """identity in a schema of its own, publishing to the session's identity.events topic."""
    app, runtime = build(IdentitySettings(**{**isolated("identity"), **TEST_SETTINGS, **settings}))
    async with running(app, runtime) as client:
        identity = RunningIdentity(app, runtime, client)
        try:
            yield identity
        finally:
            for keys in identity._keys:
                await keys.aclose()
