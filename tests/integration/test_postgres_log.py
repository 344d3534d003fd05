"""PostgreSQL's own log holds no full phone number and no ID number (docs/personal-data.md, "In
the databases"): the local cluster logs errors tersely, so a unique violation's DETAIL ("Key
(phone)=(…) already exists") and the failing statement never reach it.

This runs after every other test of the session (the journeys that register and verify people,
tests/conftest.py), and causes the duplicates itself: the same phone registered twice and one ID
number bound to two accounts through identity's API, both at once too (the race that remains
when duplicates are looked for before the insert), and a unique violation that certainly carries a
phone and an ID number. It passes only after finding that violation's own line in the log: proof
that the file it scanned is the one this server writes.
"""

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from kernel.runtime import ServiceRuntime
from services.identity.app import build
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from tests.support.apps import isolated, running
from tests.support.identity import TEST_SETTINGS, app_of, register_through
from tests.support.infra import ADMIN_URL, DATABASE_URL
from tests.support.people import id_number
from tests.support.postgres_log import local_cluster_paths, written_since_session_began

pytestmark = pytest.mark.last

PASSWORD = "s3cret-pass"
# A mainland mobile number, bare or with the country code (how identity stores it).
PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86)?1[3-9][0-9]{9}(?![0-9A-Za-z])")
# An 18-character resident ID number: region, birth date (1800-2099), sequence, check character.
ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)


async def server_settings() -> tuple[str, str, str]:
    """Where the cluster of DATABASE_URL keeps its data, and how it logs errors."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        names = ("data_directory", "log_error_verbosity", "log_min_error_statement")
        return tuple([str(await conn.fetchval(f"SHOW {name}")) for name in names])  # type: ignore[return-value]
    finally:
        await conn.close()


def server_log(data_directory: str, verbosity: str, statements: str) -> Path:
    """The local cluster's log, or a skip that says why it is not scanned."""
    local_data, local_log = local_cluster_paths()
    if os.path.realpath(data_directory) != os.path.realpath(local_data):
        where = urlsplit(DATABASE_URL)
        pytest.skip(
            f"NOT SCANNED: DATABASE_URL points to an external cluster ({where.hostname}:{where.port}, data directory "
            f"{data_directory}), not to the local one of deploy/local/postgres.sh ({local_data}); its server log "
            f"cannot be read from here (it runs with log_error_verbosity={verbosity}, "
            f"log_min_error_statement={statements})"
        )
    assert (verbosity, statements) == ("terse", "panic"), "deploy/local/postgres.sh sets both"
    assert local_log.is_file(), (
        f"the local cluster (data directory {local_data}) writes its log to {local_log} (deploy/local/postgres.sh "
        "start: pg_ctl -l), but there is no such file: nothing to scan"
    )
    return local_log


@pytest.fixture
async def identity() -> AsyncIterator[tuple[httpx.AsyncClient, ServiceRuntime]]:
    app, runtime = build(IdentitySettings(**isolated("identity"), **TEST_SETTINGS))  # type: ignore[arg-type]
    async with running(app, runtime) as client:
        yield client, runtime


async def register(client: httpx.AsyncClient, phone: str) -> httpx.Response:
    return await register_through(client, phone)


async def verified_with(client: httpx.AsyncClient, phone: str, number: str) -> httpx.Response:
    created = await register(client, phone)
    assert created.status_code == 201, created.text
    session = await client.post("/v1/sessions", json={"phone": phone, "password": PASSWORD})
    auth = {"Authorization": f"Bearer {session.json()['access_token']}"}
    url = f"/v1/users/{created.json()['user_id']}/verification"
    return await client.post(url, json={"name": "张三", "id_number": number}, headers=auth)


async def line_appears(log: Path, since: int, wanted: str, seconds: float = 10) -> str:
    """The first line written after `since` (a byte offset) that contains `wanted`, waiting for the server."""
    for _ in range(int(seconds * 10)):
        with log.open("rb") as f:
            f.seek(since)
            for line in f.read().decode("utf-8", errors="replace").splitlines():
                if wanted in line:
                    return line
        await asyncio.sleep(0.1)
    raise AssertionError(f"no line with {wanted!r} in {log} after {seconds} s: is this the log the server writes?")


def masked(found: str) -> str:
    return f"{found[:4]}…{found[-2:]}"


async def test_duplicates_leave_no_phone_or_id_number_in_the_server_log(
    identity: tuple[httpx.AsyncClient, ServiceRuntime],
) -> None:
    client, runtime = identity
    log = server_log(*await server_settings())
    before = log.stat().st_size

    # A phone registered twice: through identity's API (the second gets no code: phone_registered
    # is texted instead), then twice at the same moment through the service layer (the race the
    # unique key decides).
    assert (await register(client, "13912340001")).status_code == 201
    assert (await register(client, "13912340001")).json()["code"] == "invalid_code"
    svc: IdentityService = app_of(client).state.identity
    registered = await asyncio.gather(
        svc.register("13912340002", PASSWORD, "applicant", "c"),
        svc.register("13912340002", PASSWORD, "applicant", "c"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in registered) == ["Conflict", "UUID"], registered
    # One ID number bound to two accounts: one after the other, then at the same moment.
    number = id_number(date(1990, 1, 1), seq=41)
    assert (await verified_with(client, "13912340003", number)).status_code == 201
    assert (await verified_with(client, "13912340004", number)).json()["code"] == "verification_failed"
    racing = id_number(date(1991, 2, 3), seq=42)
    both = await asyncio.gather(
        verified_with(client, "13912340005", racing), verified_with(client, "13912340006", racing)
    )
    assert sorted(r.status_code for r in both) == [201, 422], [r.text for r in both]

    # Unique violations whose DETAIL surely names a phone, then an ID number, as identity's role in
    # identity's schema: the server sends the values to the client, and must not log them.
    schema = runtime.settings.db_schema
    async with runtime.pool.acquire() as conn:
        await conn.execute("CREATE TABLE log_probe (phone text PRIMARY KEY, id_number text NOT NULL UNIQUE)")
        await conn.execute("INSERT INTO log_probe VALUES ($1, $2)", "+8613912340007", number)
        with pytest.raises(asyncpg.UniqueViolationError) as same_phone:
            await conn.execute("INSERT INTO log_probe VALUES ($1, $2)", "+8613912340007", racing)
        with pytest.raises(asyncpg.UniqueViolationError) as same_number:
            await conn.execute("INSERT INTO log_probe VALUES ($1, $2)", "+8613912340008", number)
    assert "13912340007" in str(same_phone.value.detail), "the error itself carries the phone"
    assert number in str(same_number.value.detail), "the error itself carries the ID number"

    # Their lines are in the log (log_line_prefix names the role and the schema's application_name) ...
    for constraint in ("log_probe_pkey", "log_probe_id_number_key"):
        error = f'duplicate key value violates unique constraint "{constraint}"'
        line = await line_appears(log, before, f"identity@flexenroll flexenroll-{schema}: ERROR:  {error}")
        assert "13912340007" not in line and number not in line
    # ... and nothing written since the session began names a phone or an ID number.
    text = written_since_session_began(log)
    assert line in text
    leaks = [
        f"line {n}: {kind} {masked(m)}"
        for n, row in enumerate(text.splitlines(), 1)
        for kind, pattern in (("phone", PHONE), ("ID number", ID_NUMBER))
        for m in pattern.findall(row)
    ]
    assert not leaks, f"{log} (since this session began) holds personal data: {leaks[:20]}"
