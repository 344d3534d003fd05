"""Each service's own database role (docs/personal-data.md, "In the databases"): provisioned by the
administrator (kernel.db.provision), it logs in with its password, owns its schema and nothing
else, and cannot create schemas, databases or roles; a service never creates its schema."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from kernel.db import SchemaMissing, create_pool, migrate, provision
from tests.support.infra import (
    ADMIN_URL,
    DATABASE_URL,
    KERNEL_TEST_ROLE,
    connect_as,
    drop_schemas,
    provision_schema,
    role_password,
    service_pool,
    unique_name,
)


@pytest.fixture
async def schemas() -> AsyncIterator[list[str]]:
    made: list[str] = []
    yield made
    await drop_schemas(*made)


async def admin_fetchrow(query: str, *args: object) -> asyncpg.Record:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        row = await conn.fetchrow(query, *args)
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_a_service_role_owns_its_schema_and_may_do_nothing_else(schemas: list[str]) -> None:
    own, other = unique_name("t_identity"), unique_name("t_review")
    schemas += [own, other]
    pool = await service_pool("identity", own, 1, 1)
    await provision_schema("review", other)
    try:
        await migrate(pool, own, [])  # the kernel's tables, created by the role in its own schema
        async with pool.acquire() as conn:
            me = await conn.fetchrow(
                "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolcanlogin, "
                "has_database_privilege(current_user, current_database(), 'CREATE') AS create_in_db, "
                "(SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1) AS owner_of_own "
                "FROM pg_roles r WHERE r.rolname = current_user",
                own,
            )
            assert me is not None
            assert dict(me) == {
                "rolsuper": False,
                "rolcreatedb": False,
                "rolcreaterole": False,
                "rolcanlogin": True,
                "create_in_db": False,
                "owner_of_own": "identity",
            }
            for forbidden in (
                f'CREATE SCHEMA "{unique_name("t_mine")}"',
                f'CREATE TABLE "{other}".intruder (x int)',
                f'SELECT 1 FROM "{other}".events',
                "CREATE TABLE public.intruder (x int)",
                "CREATE ROLE intruder",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(forbidden)
    finally:
        await pool.close()
    stored = await admin_fetchrow("SELECT rolpassword FROM pg_authid WHERE rolname = 'identity'")
    assert stored["rolpassword"].startswith("SCRAM-SHA-256$4096:")


async def test_a_role_logs_in_only_with_its_password(schemas: list[str]) -> None:
    schema = unique_name("t")
    schemas.append(schema)
    await provision_schema(KERNEL_TEST_ROLE, schema)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await create_pool(DATABASE_URL, schema, 1, 1, user=KERNEL_TEST_ROLE, password="not-its-password")
    conn = await connect_as(KERNEL_TEST_ROLE, schema)
    try:
        assert await conn.fetchval("SELECT current_user") == KERNEL_TEST_ROLE
    finally:
        await conn.close()


async def test_a_missing_schema_is_an_error_that_says_to_provision_it() -> None:
    schema = unique_name("t_never_provisioned")
    await provision_schema(KERNEL_TEST_ROLE, unique_name("t_other"))  # the role exists; this schema does not
    with pytest.raises(SchemaMissing, match=f'schema "{schema}" does not exist: provision it for role testsvc'):
        await create_pool(DATABASE_URL, schema, 1, 1, user=KERNEL_TEST_ROLE, password=role_password(KERNEL_TEST_ROLE))
    found = await admin_fetchrow("SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1", schema)
    assert found["n"] == 0, "the pool did not create it"


async def test_a_schema_another_role_owned_is_handed_over_with_everything_in_it(schemas: list[str]) -> None:
    """A cluster from before the roles: the administrator created the schema and its tables."""
    schema = unique_name("t_old")
    schemas.append(schema)
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(
            f'CREATE SCHEMA "{schema}"; '
            f'CREATE TABLE "{schema}".things (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text); '
            f'CREATE SEQUENCE "{schema}".numbers; '
            f'CREATE VIEW "{schema}".names AS SELECT what FROM "{schema}".things; '
            f'CREATE FUNCTION "{schema}".answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$'
        )
    finally:
        await conn.close()
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 1)
    try:
        await pool.execute("INSERT INTO things (what) VALUES ('x')")
        assert await pool.fetchval("SELECT nextval('numbers') + answer()") == 43
        assert await pool.fetchval("SELECT what FROM names") == "x"
        owners = await pool.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = to_regnamespace($1)",
            schema,
        )
        assert [r["owner"] for r in owners] == [KERNEL_TEST_ROLE]
    finally:
        await pool.close()


async def test_provisioning_refuses_to_make_the_administrator_or_a_superuser_a_service_role() -> None:
    admin = await admin_fetchrow("SELECT current_user AS me")
    with pytest.raises(ValueError, match="administrator"):
        await provision(ADMIN_URL, admin["me"], "whatever", unique_name("t"))
    with pytest.raises(ValueError, match="superuser"):
        await provision(ADMIN_URL, "postgres", "whatever", unique_name("t"))
    still = await admin_fetchrow("SELECT rolsuper FROM pg_roles WHERE rolname = $1", admin["me"])
    assert still["rolsuper"] is True
