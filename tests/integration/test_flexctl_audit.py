"""`flexctl audit person|staff` on the real database: each service's trail read with its own role
and schema, entries merged newest first; a service whose schema is not there is named, not fatal."""

import asyncio
import json
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from typer.testing import CliRunner

from kernel import audit
from kernel.db import migrate
from ops import cli_support, flexctl
from tests.support.infra import DATABASE_URL, drop_schemas, service_pool, unique_name


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """One schema, enrollment's (flexctl reads SCHEMA_NAME for every service: the others' roles do
    not own it, so they are reported as not read)."""
    name = unique_name("t_audit")
    monkeypatch.setenv("SCHEMA_NAME", name)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setattr(cli_support.console, "width", 250)
    yield name
    asyncio.run(drop_schemas(name))


async def _seed(schema: str, person: UUID, staff: UUID, other_staff: UUID) -> None:
    pool = await service_pool("enrollment", schema, 1, 1)
    try:
        await migrate(pool, schema, [])
        async with pool.acquire() as conn:
            for actor, action in ((staff, "document.read"), (other_staff, "registration_form.read")):
                await audit.record(
                    conn,
                    actor_id=actor,
                    actor_role="reviewer",
                    action=action,
                    person_id=person,
                    detail={"application_id": "a-1", "kind": "id_card_front"},
                    client="10.0.0.7",
                )
            await audit.record(
                conn,
                actor_id=staff,
                actor_role="reviewer",
                action="document.read",
                person_id=uuid4(),  # someone else's file
                detail={},
                client=None,
            )
    finally:
        await pool.close()


def test_audit_person_and_staff_list_the_entries_newest_first(schema: str) -> None:
    person, staff, other_staff = uuid4(), uuid4(), uuid4()
    asyncio.run(_seed(schema, person, staff, other_staff))

    about = CliRunner().invoke(flexctl.app, ["audit", "person", str(person)])
    assert about.exit_code == 0, about.output
    assert about.output.index("registration_form.read") < about.output.index("document.read")  # newest first
    assert str(staff) in about.output and str(other_staff) in about.output and "10.0.0.7" in about.output
    assert "2 entries" in about.output
    assert "not read: identity" in about.output  # the other services' schemas are not there for their roles

    lines = CliRunner().invoke(flexctl.app, ["audit", "person", str(person), "--json"])
    rows = [json.loads(line) for line in lines.output.splitlines() if line.startswith("{")]
    assert [(r["service"], r["action"], r["actor_id"]) for r in rows] == [
        ("enrollment", "registration_form.read", str(other_staff)),
        ("enrollment", "document.read", str(staff)),
    ]

    by = CliRunner().invoke(flexctl.app, ["audit", "staff", str(staff)])
    assert by.exit_code == 0, by.output
    assert by.output.count("document.read") == 2 and "registration_form.read" not in by.output
    assert "2 entries" in by.output

    nobody = CliRunner().invoke(flexctl.app, ["audit", "staff", str(uuid4())])
    assert nobody.exit_code == 0 and "0 entries" in nobody.output
