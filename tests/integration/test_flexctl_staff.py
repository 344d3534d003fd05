"""`flexctl staff add [--agency CODE]` on the real database: a reviewer bound to an accepting agency
logs in with the agency in their token; city-level reviewers and operators without one."""

import asyncio
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from kernel.eventstore import EventStore
from kernel.runtime import OpenStorage
from ops import cli_support, flexctl
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from tests.support.infra import DATABASE_URL, connect_as, drop_schemas, provision_schema, service_pool, unique_name

PASSWORD = "s3cret-pass"


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """flexctl reads IdentitySettings from the environment: point it at a schema of its own,
    provisioned for identity's role as `make up` provisions identity's."""
    name = unique_name("t_flexctl")
    asyncio.run(provision_schema("identity", name))
    monkeypatch.setenv("SCHEMA_NAME", name)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setattr(cli_support.console, "width", 250)
    yield name
    asyncio.run(drop_schemas(name))


def add(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(flexctl.app, ["staff", "add", "--password", PASSWORD, *args])
    return result.exit_code, result.output


async def agency_and_login(schema: str, phone: str) -> tuple[str | None, str | None]:
    """The stored agency, and the agency of the principal that logging in gives (what the token carries)."""
    pool = await service_pool("identity", schema, 1, 1)
    try:
        stored = await pool.fetchval("SELECT agency_code FROM credentials WHERE phone = $1", f"+86{phone}")
        service = IdentityService.from_settings(OpenStorage(pool, EventStore("identity", schema)), IdentitySettings())
        principal = await service.login(phone, PASSWORD)
        return stored, principal.scope
    finally:
        await pool.close()


async def accounts(schema: str) -> int:
    conn = await connect_as("identity", schema)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM credentials"))
    finally:
        await conn.close()


def test_staff_add_with_an_agency_binds_the_reviewer_to_it(schema: str) -> None:
    code, output = add("--phone", "13700000001", "--role", "reviewer", "--agency", "320411")
    assert code == 0, output
    assert "reviewer account created at agency 320411" in output and "warning" not in output
    assert asyncio.run(agency_and_login(schema, "13700000001")) == ("320411", "320411")

    code, output = add("--phone", "13700000002", "--role", "reviewer")
    assert code == 0, output
    assert "city-level" in output
    assert asyncio.run(agency_and_login(schema, "13700000002")) == (None, None)

    code, output = add("--phone", "13700000003", "--role", "operator")
    assert code == 0, output
    assert asyncio.run(agency_and_login(schema, "13700000003")) == (None, None)


def test_staff_add_refuses_an_agency_the_reference_directory_does_not_list(schema: str) -> None:
    """A reviewer bound to an unknown agency would see no case at all: refused, with the codes that exist."""
    for unknown in ("110101", "320499", "32041"):  # outside Changzhou, a code with no office, malformed
        code, output = add("--phone", "13700000004", "--agency", unknown)  # reviewer is the default role
        assert code == 1 and "unknown_agency" in output and "320411" in output, output
    code, output = add("--phone", "13700000005", "--agency", "320481")  # 溧阳市: listed
    assert code == 0, output
    assert asyncio.run(agency_and_login(schema, "13700000005")) == ("320481", "320481")
    assert asyncio.run(accounts(schema)) == 1


def test_staff_add_refuses_a_malformed_agency_and_one_for_an_operator(schema: str) -> None:
    code, output = add("--phone", "13700000006", "--role", "reviewer", "--agency", "abcdef")
    assert code == 1 and "unknown_agency" in output, output
    code, output = add("--phone", "13700000007", "--role", "operator", "--agency", "320411")
    assert code == 2 and "reviewers only" in output, output
    code, output = add("--phone", "13700000008", "--role", "reviewer", "--agency", "320411")  # the schema exists now
    assert code == 0, output
    assert asyncio.run(accounts(schema)) == 1  # neither refused account was stored
