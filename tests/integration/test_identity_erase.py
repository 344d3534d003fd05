"""Erasing a person at identity (docs/personal-data.md, "Erasure"), through its service layer and
through `flexctl person erase`, on the real database and broker: the key, the login and the
ID-number binding are gone, PersonErased is on identity.events, and the person may start again."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from uuid import UUID, uuid4

import pytest
from typer.testing import CliRunner

from contracts.envelope import Envelope
from contracts.events.identity import PersonErased, UserRegistered, UserVerified
from contracts.upcasting import decode
from kernel.db import migrate, migrations_from
from kernel.eventstore import EventStore
from kernel.problems import NotFound
from kernel.runtime import OpenStorage
from kernel.settings import local_secret
from ops import cli_support, flexctl
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from tests.support.identity import PASSWORD, RunningIdentity, running_identity, unique_phone
from tests.support.infra import (
    DATABASE_URL,
    drop_schemas,
    provision_schema,
    read_topic,
    service_pool,
    topic,
    topic_size,
    unique_name,
)


@pytest.fixture
async def identity() -> AsyncIterator[RunningIdentity]:
    async with running_identity() as running:
        yield running


async def erased_on_topic(user_id: UUID, timeout: float = 30.0) -> list[PersonErased]:
    name = topic("identity.events")
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        records = await read_topic(name, expect=await topic_size(name), timeout=10)
        found = [
            decode(Envelope.from_json(r.value))  # type: ignore[attr-defined]
            for r in records
            if r.key == f"user-{user_id}".encode()  # type: ignore[attr-defined]
            and json.loads(r.value)["event_type"] == "PersonErased"  # type: ignore[attr-defined]
        ]
        if found:
            return [e for e in found if isinstance(e, PersonErased)]
        assert asyncio.get_running_loop().time() < deadline, f"PersonErased of {user_id} never reached {name}"
        await asyncio.sleep(0.2)


async def test_erasure_deletes_key_login_and_binding_and_publishes_person_erased(identity: RunningIdentity) -> None:
    person = await identity.person(name="孙七")
    keys = identity.keys("notify")
    assert await keys.key_of(person.user_id) is not None
    reader = {"Authorization": f"Bearer {local_secret('personal-data', 'notify')}"}

    erasure = await identity.erase(person.user_id)
    assert erasure.user_id == person.user_id and not erasure.already_erased
    assert erasure.key_deleted and erasure.login_deleted and erasure.id_binding_deleted

    # the key: gone for every reader (a cached copy goes with `forget`, on PersonErased)
    gone = await identity.client.get(f"/v1/person-keys/{person.user_id}", headers=reader)
    assert gone.status_code == 404 and gone.json()["code"] == "person_key_not_found"
    keys.forget(person.user_id)
    assert await keys.key_of(person.user_id) is None
    history = await identity.service.store.load(identity.runtime.pool, f"user-{person.user_id}")
    sealed = [e for e in map(decode, history) if isinstance(e, UserRegistered | UserVerified)]
    assert len(sealed) == 2 and all([await keys.open(e.personal) is None for e in sealed])

    # the login, the account view
    login = await identity.client.post("/v1/sessions", json={"phone": person.phone, "password": PASSWORD})
    assert login.status_code == 401 and login.json()["code"] == "invalid_credentials"
    # the person's tokens: refused here at once, and everywhere else from the revocation list on
    view = await identity.client.get(f"/v1/users/{person.user_id}", headers=person.auth)
    assert view.status_code == 401 and view.json()["code"] in ("account_disabled", "token_revoked"), view.text
    listed = (await identity.client.get("/v1/token-revocations")).json()
    assert {"user_id": str(person.user_id), "min_version": 1, "disabled": True} in listed["revocations"], listed

    # the fact, on the topic, in the stream after the rest
    assert [e.user_id for e in await erased_on_topic(person.user_id)] == [person.user_id]
    assert [e.event_type for e in history] == ["UserRegistered", "UserVerified", "PersonErased"]
    for table in ("person_keys", "credentials", "id_number_bindings"):
        left = await identity.runtime.pool.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", person.user_id)
        assert left == 0, table

    # the person may start again: same phone, same ID number, a new account
    assert person.id_number is not None
    again = await identity.register(person.phone)
    assert again.user_id != person.user_id
    verified = await identity.client.post(
        f"/v1/users/{again.user_id}/verification",
        json={"name": "孙七", "id_number": person.id_number},
        headers=again.auth,
    )
    assert verified.status_code == 201, verified.text


async def test_erasing_twice_is_harmless_and_an_unknown_user_is_not_found(identity: RunningIdentity) -> None:
    person = await identity.person(verified=False)
    first = await identity.erase(person.user_id)
    assert not first.already_erased and first.key_deleted and first.login_deleted
    assert not first.id_binding_deleted  # never verified: nothing was bound
    second = await identity.erase(person.user_id)
    assert second.already_erased
    assert not (second.key_deleted or second.login_deleted or second.id_binding_deleted)
    history = await identity.service.store.load(identity.runtime.pool, f"user-{person.user_id}")
    assert [e.event_type for e in history] == ["UserRegistered", "PersonErased"]  # one PersonErased
    with pytest.raises(NotFound) as unknown:
        await identity.erase(uuid4())
    assert unknown.value.code == "user_not_found"


async def test_an_erased_person_cannot_be_verified_any_more(identity: RunningIdentity) -> None:
    person = await identity.person(verified=False)
    await identity.erase(person.user_id)
    answer = await identity.client.post(
        f"/v1/users/{person.user_id}/verification",
        json={"name": "张三", "id_number": "320402199003071234"},
        headers=person.auth,  # a token issued before the erasure: revoked with the account
    )
    assert answer.status_code == 401 and answer.json()["code"] in ("account_disabled", "token_revoked"), answer.text


# --- flexctl person erase ---------------------------------------------------------------------


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """flexctl reads IdentitySettings from the environment: point it at a schema of its own."""
    name = unique_name("t_flexctl")
    asyncio.run(provision_schema("identity", name))  # as `make up` provisions identity's
    monkeypatch.setenv("SCHEMA_NAME", name)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setattr(cli_support.console, "width", 250)
    yield name
    asyncio.run(drop_schemas(name))


async def _in_schema(schema: str, action: str, user_id: UUID | None = None) -> object:
    pool = await service_pool("identity", schema, 1, 1)
    try:
        await migrate(pool, schema, migrations_from("services.identity"))
        service = IdentityService.from_settings(OpenStorage(pool, EventStore("identity", schema)), IdentitySettings())
        if action == "register":
            return await service.register(unique_phone(), PASSWORD, "applicant", "c")
        assert user_id is not None
        events = await service.store.load(pool, f"user-{user_id}")
        return [e.event_type for e in events], await pool.fetchval(
            "SELECT count(*) FROM person_keys WHERE user_id = $1", user_id
        )
    finally:
        await pool.close()


def test_flexctl_person_erase_asks_then_erases_once(schema: str) -> None:
    user_id = asyncio.run(_in_schema(schema, "register"))
    assert isinstance(user_id, UUID)
    runner = CliRunner()

    declined = runner.invoke(flexctl.app, ["person", "erase", str(user_id)], input="n\n")
    assert declined.exit_code == 1 and "Erase the personal data" in declined.output, declined.output
    assert asyncio.run(_in_schema(schema, "state", user_id)) == (["UserRegistered"], 1)

    erased = runner.invoke(flexctl.app, ["person", "erase", str(user_id)], input="y\n")
    assert erased.exit_code == 0, erased.output
    assert f"person {user_id} erased" in erased.output and "data key" in erased.output and "login" in erased.output
    assert asyncio.run(_in_schema(schema, "state", user_id)) == (["UserRegistered", "PersonErased"], 0)

    again = runner.invoke(flexctl.app, ["person", "erase", str(user_id), "--yes"])
    assert again.exit_code == 0 and "erased before" in again.output, again.output
    assert asyncio.run(_in_schema(schema, "state", user_id)) == (["UserRegistered", "PersonErased"], 0)

    unknown = runner.invoke(flexctl.app, ["person", "erase", str(uuid4()), "--yes"])
    assert unknown.exit_code == 1 and "user_not_found" in unknown.output, unknown.output
    malformed = runner.invoke(flexctl.app, ["person", "erase", "not-a-uuid", "--yes"])
    assert malformed.exit_code == 2
