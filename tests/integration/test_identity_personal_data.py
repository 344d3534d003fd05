"""identity's personal data (docs/personal-data.md) on the real database and broker: what reaches
identity.events is sealed, the key endpoint answers only the reading services, ID numbers are kept
as keyed hashes, and duplicates are refused before any insert."""

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery

from contracts.envelope import Envelope
from contracts.events.identity import UserRegistered, UserVerified
from contracts.upcasting import decode
from kernel.auth import Principal
from kernel.eventstore import EventStore
from kernel.problems import Conflict, Refused
from kernel.runtime import OpenStorage
from kernel.settings import local_secret
from services.identity.service import IdentityService
from tests.support import tokens
from tests.support.identity import PASSWORD, RunningIdentity, running_identity, unique_phone
from tests.support.infra import read_topic, service_pool, topic, topic_size
from tests.support.people import id_number


@pytest.fixture
async def identity() -> AsyncIterator[RunningIdentity]:
    async with running_identity() as running:
        yield running


async def stream_on_topic(user_id: UUID, expect: set[str], timeout: float = 30.0) -> list[Any]:
    """The raw records of one account's stream on the session's identity.events, once `expect`
    (event types) are all there."""
    deadline = asyncio.get_running_loop().time() + timeout
    name = topic("identity.events")
    while True:
        records = await read_topic(name, expect=await topic_size(name), timeout=10)
        mine = [r for r in records if r.key == f"user-{user_id}".encode()]  # type: ignore[attr-defined]
        if expect <= {json.loads(r.value)["event_type"] for r in mine}:  # type: ignore[attr-defined]
            return mine
        assert asyncio.get_running_loop().time() < deadline, f"{expect} of {user_id} never reached {name}"
        await asyncio.sleep(0.2)


def reader_auth(service: str) -> dict[str, str]:
    """The header a reading service sends with its shipped development token."""
    return {"Authorization": f"Bearer {local_secret('personal-data', service)}"}


def json_escaped(text: str) -> bytes:
    return json.dumps(text).strip('"').encode()


async def test_identity_events_carry_no_clear_phone_name_birth_date_or_id_number(identity: RunningIdentity) -> None:
    person = await identity.person(name="欧阳娜娜", birth=date(1991, 4, 5), male=False)
    assert person.id_number is not None
    records = await stream_on_topic(person.user_id, {"UserRegistered", "UserVerified"})
    raw = b"\n".join(r.value for r in records)
    national = person.phone.removeprefix("+86")
    forbidden = [
        person.phone.encode(),
        national.encode(),
        f"{national[:3]} {national[3:7]} {national[7:]}".encode(),
        "欧阳娜娜".encode(),
        json_escaped("欧阳娜娜"),
        b"1991-04-05",
        b"19910405",
        person.id_number.encode(),
        person.id_number[:14].encode(),  # region and birth date: most of the number
        person.id_number[:6].encode(),  # the region code v1 published
    ]
    for value in forbidden:
        assert value not in raw, value

    # ... yet it is all there, sealed under the person's key, for the services identity gives it.
    keys = identity.keys("review")
    events = [decode(Envelope.from_json(r.value)) for r in records]
    registered = next(e for e in events if isinstance(e, UserRegistered))
    verified = next(e for e in events if isinstance(e, UserVerified))
    assert registered.phone_masked == f"+86{national[:3]}****{national[-4:]}"
    assert await keys.open(registered.personal, owner=person.user_id) == {"phone": person.phone}
    opened = await keys.open(verified.personal, owner=person.user_id)
    assert opened == {"name": "欧阳娜娜", "birth_date": "1991-04-05"}
    assert verified.id_number_masked == person.id_number[:4] + "*" * 10 + person.id_number[-4:]
    assert verified.gender == "female"
    assert {json.loads(r.value)["schema_version"] for r in records} == {2}


async def test_the_holder_sees_their_own_facts_opened(identity: RunningIdentity) -> None:
    person = await identity.person(name="王五", birth=date(1980, 12, 31))
    view = (await identity.client.get(f"/v1/users/{person.user_id}", headers=person.auth)).json()
    assert view["name"] == "王五" and view["birth_date"] == "1980-12-31" and view["gender"] == "male"
    assert view["phone_masked"] == person.phone[:6] + "****" + person.phone[-4:]


# --- the key endpoint -------------------------------------------------------------------------


async def test_the_key_endpoint_answers_only_the_reading_services(
    identity: RunningIdentity, capsys: pytest.CaptureFixture[str]
) -> None:
    person = await identity.person()
    url = f"/v1/person-keys/{person.user_id}"
    stored = await identity.runtime.pool.fetchval("SELECT data_key FROM person_keys WHERE user_id = $1", person.user_id)
    assert isinstance(stored, bytes) and len(stored) == 32
    for reader in ("enrollment", "review", "notify", "payment"):
        answer = await identity.client.get(
            url, headers={"Authorization": f"Bearer {local_secret('personal-data', reader)}"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user_id": str(person.user_id), "key": base64.b64encode(stored).decode()}
        assert answer.headers["cache-control"] == "no-store"
    log = capsys.readouterr().out
    assert "person_key_read" in log and "review" in log  # who read whose key is logged ...
    assert base64.b64encode(stored).decode() not in log and stored.hex() not in log  # ... never the key

    operator = tokens.token(Principal(uuid4(), "operator"), 60)
    refused = {
        "authentication_required": {},
        "invalid_token": {"Authorization": "Bearer not-a-reader"},
    }
    for code, headers in refused.items():
        answer = await identity.client.get(url, headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == code, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in answer.json()["detail"])
    for token in (operator, person.token, local_secret("personal-data", "identity")):  # people and non-readers
        answer = await identity.client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"

    unknown = await identity.client.get(
        f"/v1/person-keys/{uuid4()}", headers={"Authorization": f"Bearer {local_secret('personal-data', 'notify')}"}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "person_key_not_found"


async def test_the_readers_and_their_tokens_come_from_settings() -> None:
    async with running_identity(identity_key_readers={"notify": "a-token-of-notify"}) as identity:
        person = await identity.person(verified=False)
        url = f"/v1/person-keys/{person.user_id}"
        shipped = await identity.client.get(
            url, headers={"Authorization": f"Bearer {local_secret('personal-data', 'notify')}"}
        )
        assert shipped.status_code == 401
        configured = await identity.client.get(url, headers={"Authorization": "Bearer a-token-of-notify"})
        assert configured.status_code == 200


async def test_person_keys_client_opens_with_identitys_real_keys(identity: RunningIdentity) -> None:
    person = await identity.person(name="赵六")
    history = await identity.service.store.load(identity.runtime.pool, f"user-{person.user_id}")
    verified = decode(history[1])
    assert isinstance(verified, UserVerified)
    keys = identity.keys("enrollment")
    assert await keys.open(verified.personal, owner=person.user_id) == {"name": "赵六", "birth_date": "1990-03-07"}
    assert await keys.key_of(uuid4()) is None


# --- ID numbers kept as keyed hashes ----------------------------------------------------------


async def test_an_id_number_is_bound_by_its_keyed_hash_and_only_once(identity: RunningIdentity) -> None:
    first = await identity.person()
    assert first.id_number is not None
    rows = await identity.runtime.pool.fetch("SELECT * FROM id_number_bindings")
    assert len(rows) == 1 and rows[0]["user_id"] == first.user_id
    key = identity.settings.identity_id_number_hmac_key.get_secret_value().encode()
    assert rows[0]["id_number_hmac"] == hmac.new(key, first.id_number.encode(), hashlib.sha256).digest()
    assert rows[0]["id_number_hmac"] != hashlib.sha256(first.id_number.encode()).digest()  # keyed, not a plain hash
    tables = await identity.runtime.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", identity.settings.db_schema
    )
    for table in (r["table_name"] for r in tables):
        dump = await identity.runtime.pool.fetchval(
            f"SELECT coalesce(string_agg(t::text, '\n'), '') FROM \"{table}\" t"
        )
        assert first.id_number not in dump and first.id_number[:14] not in dump, table

    second = await identity.register()
    again = await identity.client.post(
        f"/v1/users/{second.user_id}/verification",
        json={"name": "张三", "id_number": first.id_number.lower()},
        headers=second.auth,
    )
    assert again.status_code == 422 and again.json()["code"] == "verification_failed"  # never says it is bound


async def test_clear_numbers_of_the_old_table_are_rekeyed(identity: RunningIdentity) -> None:
    """Rows migration 001 stored in clear become keyed hashes, at start and before any binding."""
    pool = identity.runtime.pool
    old_owner, number = uuid4(), id_number(date(1975, 8, 9), seq=77)
    await pool.execute("INSERT INTO id_bindings (id_number, user_id) VALUES ($1, $2)", number, old_owner)
    newcomer = await identity.register()
    taken = await identity.client.post(
        f"/v1/users/{newcomer.user_id}/verification", json={"name": "张三", "id_number": number}, headers=newcomer.auth
    )
    assert taken.status_code == 422 and taken.json()["code"] == "verification_failed"
    assert await pool.fetchval("SELECT count(*) FROM id_bindings") == 0
    assert await pool.fetchval("SELECT user_id FROM id_number_bindings WHERE id_number_hmac = $1",
                               identity.service.id_number_hmac(number)) == old_owner  # fmt: skip

    other = id_number(date(1976, 1, 2), seq=78)
    await pool.execute("INSERT INTO id_bindings (id_number, user_id) VALUES ($1, $2)", other, uuid4())
    assert await identity.service.rekey_legacy_bindings() == 1  # what the start job does
    assert await identity.service.rekey_legacy_bindings() == 0
    assert await pool.fetchval("SELECT count(*) FROM id_bindings") == 0


# --- duplicates refused before the insert -----------------------------------------------------


class Statements:
    """Every statement one connection sends, with the error PostgreSQL answered."""

    def __init__(self) -> None:
        self.logged: list[LoggedQuery] = []

    def __call__(self, record: LoggedQuery) -> None:
        self.logged.append(record)

    def failed(self) -> list[str]:
        return [f"{q.query}: {type(q.exception).__name__}" for q in self.logged if q.exception is not None]

    def inserts_into(self, table: str) -> list[str]:
        return [q.query for q in self.logged if q.query.lstrip().upper().startswith(f"INSERT INTO {table.upper()}")]


@pytest.fixture
async def watched(identity: RunningIdentity) -> AsyncIterator[tuple[IdentityService, Statements]]:
    """identity's service on a one-connection pool of its schema, every statement recorded."""
    pool = await service_pool("identity", identity.settings.db_schema, 1, 1)
    statements = Statements()
    async with pool.acquire() as conn:
        conn.add_query_logger(statements)  # stays on the pool's only connection
    try:
        yield IdentityService.from_settings(OpenStorage(pool, EventStore("identity", identity.settings.db_schema)),
                                            identity.settings), statements  # fmt: skip
    finally:
        await pool.close()


async def test_a_duplicate_phone_is_refused_before_any_insert(
    identity: RunningIdentity, watched: tuple[IdentityService, Statements]
) -> None:
    service, statements = watched
    phone = unique_phone()
    await service.register(phone, PASSWORD, "applicant", "c")
    assert statements.inserts_into("credentials") and statements.failed() == []  # the recorder works
    statements.logged.clear()

    with pytest.raises(Conflict) as refused:
        await service.register(phone.removeprefix("+86"), PASSWORD, "applicant", "c")
    assert refused.value.code == "phone_taken"
    await asyncio.sleep(0.05)  # query loggers are called soon, not at once
    assert statements.logged, "the duplicate was looked up"
    assert statements.inserts_into("credentials") == [] and statements.failed() == []

    # The control: the unique key stays as the race guard, and a violation would show here.
    with pytest.raises(asyncpg.UniqueViolationError):
        await service.pool.execute(
            "INSERT INTO credentials (user_id, phone, password_hash, role) VALUES ($1, $2, 'h', 'applicant')",
            uuid4(),
            phone,
        )
    await asyncio.sleep(0.05)
    assert [f.split(":")[-1].strip() for f in statements.failed()] == ["UniqueViolationError"]


async def test_a_bound_id_number_is_refused_before_any_insert(
    identity: RunningIdentity, watched: tuple[IdentityService, Statements]
) -> None:
    service, statements = watched
    first = await identity.person()
    assert first.id_number is not None
    second = await service.register(unique_phone(), PASSWORD, "applicant", "c")
    statements.logged.clear()
    with pytest.raises(Refused) as refused:
        await service.verify(second, "张三", first.id_number, "c")
    assert refused.value.code == "verification_failed"
    await asyncio.sleep(0.05)
    assert statements.logged and statements.inserts_into("id_number_bindings") == [] and statements.failed() == []

    # The control: the race guard's unique key does raise when an insert is forced past the check.
    statements.logged.clear()
    with pytest.raises(asyncpg.UniqueViolationError):
        await service.pool.execute(
            "INSERT INTO id_number_bindings (id_number_hmac, user_id) VALUES ($1, $2)",
            service.id_number_hmac(first.id_number),
            second,
        )
    await asyncio.sleep(0.05)
    assert statements.failed() == [
        "INSERT INTO id_number_bindings (id_number_hmac, user_id) VALUES ($1, $2): UniqueViolationError"
    ]
