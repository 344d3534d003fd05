"""`flexctl staff add [--agency CODE]` on the real database: a reviewer bound to an accepting agency
logs in with the agency in their token; city-level reviewers and operators without one. And the
staff lifecycle: disable, enable, role, reset-password (passwords from a hidden prompt or stdin only)."""

import asyncio
import itertools
import json
import random
from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest
from typer.testing import CliRunner

from kernel.eventstore import EventStore
from kernel.problems import Unauthorized
from kernel.runtime import OpenStorage
from ops import cli_support, flexctl
from services.identity.service import IdentityService
from services.identity.settings import IdentitySettings
from tests.support.infra import DATABASE_URL, connect_as, drop_schemas, provision_schema, service_pool, unique_name
from tests.support.people import id_number

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


_SEQ = itertools.count(random.randrange(0, 400))


def staff_id_number() -> str:
    return id_number(date(1985, 6, 1), region="320411", seq=next(_SEQ))


def add(*args: str, id_number: str | None = None) -> tuple[int, str]:
    who = ["--name", "张三", "--id-number", id_number or staff_id_number()]
    result = CliRunner().invoke(flexctl.app, ["staff", "add", "--password-stdin", *who, *args], input=PASSWORD + "\n")
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


def staff_command(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(flexctl.app, ["staff", *args], input=stdin)
    return result.exit_code, result.output


async def login_state(schema: str, phone: str, password: str = PASSWORD) -> tuple[str, str | None, int] | str:
    """(role, scope, token version) a log-in gets, or the refusal's code."""
    pool = await service_pool("identity", schema, 1, 1)
    try:
        service = IdentityService.from_settings(OpenStorage(pool, EventStore("identity", schema)), IdentitySettings())
        try:
            principal = await service.login(phone, password)
            version = await service.token_version_for(principal)
        except Unauthorized as refused:
            return refused.code
        return principal.role, principal.scope, version
    finally:
        await pool.close()


async def audit_actions(schema: str, user_id: str) -> list[str]:
    conn = await connect_as("identity", schema)
    try:
        rows = await conn.fetch("SELECT action FROM audit_trail WHERE person_id = $1 ORDER BY id", UUID(user_id))
        return [r["action"] for r in rows]
    finally:
        await conn.close()


def created_id(output: str) -> str:
    return output.strip().rsplit(" ", 1)[-1]


def test_staff_add_has_no_password_option_and_requires_an_id_number(schema: str) -> None:
    code, output = staff_command(
        "add", "--phone", "13700000020", "--name", "张三", "--id-number", staff_id_number(), "--password", PASSWORD
    )
    assert code == 2 and "No such option" in output, output  # a password never goes on the command line
    code, output = staff_command("add", "--phone", "13700000020", "--name", "张三", "--password-stdin", stdin=PASSWORD)
    assert code == 2 and "--id-number" in output, output
    code, output = add("--phone", "13700000020", id_number="320411198506010000")  # bad check character
    assert code == 1 and "invalid_id_number" in output, output
    number = staff_id_number()
    code, created = add("--phone", "13700000021", id_number=number)
    assert code == 0, created
    code, output = add("--phone", "13700000022", id_number=number)  # one staff account per person
    assert code == 1 and "staff_id_number_taken" in output, output
    assert asyncio.run(accounts(schema)) == 1
    linked = asyncio.run(staff_identity_row(schema, created_id(created)))
    assert linked is not None and number.encode() not in linked and len(linked) == 32  # the keyed hash only


async def staff_identity_row(schema: str, user_id: str) -> bytes | None:
    conn = await connect_as("identity", schema)
    try:
        value: bytes | None = await conn.fetchval(
            "SELECT id_number_hmac FROM staff_identities WHERE user_id = $1", UUID(user_id)
        )
        return value
    finally:
        await conn.close()


def test_disable_enable_role_and_reset_password(schema: str) -> None:
    code, output = add("--phone", "13700000030", "--role", "reviewer", "--agency", "320411")
    assert code == 0, output
    user_id = created_id(output)
    assert asyncio.run(login_state(schema, "13700000030")) == ("reviewer", "320411", 0)

    code, output = staff_command("disable", "13700000030")  # by phone
    assert code == 0 and "disabled" in output, output
    assert asyncio.run(login_state(schema, "13700000030")) == "account_disabled"
    code, output = staff_command("enable", user_id)  # by user id
    assert code == 0 and "enabled" in output, output
    assert asyncio.run(login_state(schema, "13700000030")) == ("reviewer", "320411", 1)  # older tokens stay revoked

    code, output = staff_command("role", user_id, "operator")
    assert code == 0 and "now operator" in output, output
    assert asyncio.run(login_state(schema, "13700000030")) == ("operator", None, 2)
    assert asyncio.run(profile_role(schema, user_id)) == "operator"  # GET /v1/users/{id} shows the role now
    code, output = staff_command("role", user_id, "reviewer", "--agency", "320402")
    assert code == 0, output
    assert asyncio.run(login_state(schema, "13700000030")) == ("reviewer", "320402", 3)
    code, output = staff_command("role", user_id, "applicant")
    assert code == 2, output

    new_password = "another-pass-42"
    code, output = staff_command("reset-password", user_id, "--password-stdin", stdin=new_password + "\n")
    assert code == 0 and "reset" in output, output
    assert asyncio.run(login_state(schema, "13700000030")) == "invalid_credentials"  # the old password
    assert asyncio.run(login_state(schema, "13700000030", new_password)) == ("reviewer", "320402", 4)
    # The hidden prompt, typed twice.
    code, output = staff_command("reset-password", user_id, stdin="third-pass-77\nthird-pass-77\n")
    assert code == 0 and "third-pass-77" not in output, output
    assert asyncio.run(login_state(schema, "13700000030", "third-pass-77")) == ("reviewer", "320402", 5)

    assert asyncio.run(audit_actions(schema, user_id)) == [
        "staff_created",
        "staff_disabled",
        "staff_enabled",
        "staff_role_changed",
        "staff_role_changed",
        "staff_password_reset",
        "staff_password_reset",
    ]
    assert new_password not in json.dumps(asyncio.run(audit_details(schema, user_id)), ensure_ascii=False)


async def audit_details(schema: str, user_id: str) -> list[str]:
    conn = await connect_as("identity", schema)
    try:
        return [
            r["detail"]
            for r in await conn.fetch("SELECT detail::text FROM audit_trail WHERE person_id = $1", UUID(user_id))
        ]
    finally:
        await conn.close()


def test_staff_commands_refuse_applicants_and_unknown_accounts(schema: str) -> None:
    code, output = add("--phone", "13700000040")
    assert code == 0, output

    async def applicant() -> str:
        pool = await service_pool("identity", schema, 1, 1)
        try:
            service = IdentityService.from_settings(
                OpenStorage(pool, EventStore("identity", schema)), IdentitySettings()
            )
            return str(await service.register("13700000041", PASSWORD, "applicant", "test"))
        finally:
            await pool.close()

    applicant_id = asyncio.run(applicant())
    for args in (["disable", applicant_id], ["role", applicant_id, "reviewer"], ["enable", "13700000041"]):
        code, output = staff_command(*args)
        assert code == 1 and "not_staff" in output, output
    code, output = staff_command("reset-password", applicant_id, "--password-stdin", stdin="another-pass-42\n")
    assert code == 1 and "not_staff" in output, output
    code, output = staff_command("disable", "13700000049")
    assert code == 1 and "user_not_found" in output, output


async def profile_role(schema: str, user_id: str) -> str:
    pool = await service_pool("identity", schema, 1, 1)
    try:
        service = IdentityService.from_settings(OpenStorage(pool, EventStore("identity", schema)), IdentitySettings())
        return (await service.profile(UUID(user_id))).role
    finally:
        await pool.close()
