"""flexctl audit: the access audit trail (docs/access-audit.md), read across the services.

Every service keeps its own append-only `audit_trail` (kernel.audit); these commands read each
service's with that service's own role and schema (as the service itself opens them), merge the
entries and list them newest first: who looked at a person's file (`audit person`), what a staff
member did (`audit staff`). A service whose schema cannot be read is named, not fatal.
"""

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC
from typing import Annotated
from uuid import UUID

import asyncpg
import typer
from rich.table import Table

from contracts.topics import SERVICES
from kernel import audit
from kernel.db import SchemaMissing, create_pool
from kernel.settings import ServiceSettings
from ops.cli_support import console

audit_app = typer.Typer(help="The access audit trail: who read or changed what (docs/access-audit.md).")


@dataclass(frozen=True)
class Found:
    service: str
    entry: audit.AuditEntry


async def collect(
    *, person_id: UUID | None = None, actor_id: UUID | None = None, services: tuple[str, ...] = SERVICES, limit: int
) -> tuple[list[Found], list[str]]:
    """The entries about `person_id` or by `actor_id` in every service's trail, newest first, at
    most `limit`; and the services that could not be read, with why."""
    found: list[Found] = []
    unread: list[str] = []
    for service in services:
        settings = ServiceSettings(service=service)
        try:
            pool = await create_pool(
                settings.database_url, settings.db_schema, 1, 1, user=settings.db_role, password=settings.db_secret()
            )
        except (SchemaMissing, OSError, asyncpg.PostgresError) as exc:
            unread.append(f"{service}: {exc}")
            continue
        try:
            entries = await audit.entries(pool, person_id=person_id, actor_id=actor_id, limit=limit)
        except asyncpg.UndefinedTableError:
            unread.append(f"{service}: no audit_trail yet (the service has not run its migrations)")
            continue
        finally:
            await pool.close()
        found.extend(Found(service, e) for e in entries)
    found.sort(key=lambda f: (f.entry.at, f.entry.id), reverse=True)
    return found[:limit], unread


Limit = Annotated[int, typer.Option(min=1, max=100_000, help="at most this many entries (the newest)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the entries as JSON lines")]


def _show(title: str, found: list[Found], unread: list[str], as_json: bool) -> None:
    for reason in unread:
        console.print(f"[yellow]not read: {reason}[/yellow]", highlight=False)
    if as_json:
        for f in found:
            e = f.entry
            line = {
                "service": f.service,
                "at": e.at.astimezone(UTC).isoformat(),
                "actor_id": str(e.actor_id) if e.actor_id else None,
                "actor_role": e.actor_role,
                "action": e.action,
                "person_id": str(e.person_id) if e.person_id else None,
                "detail": e.detail,
                "client": e.client,
            }
            typer.echo(json.dumps(line, ensure_ascii=False))
        return
    table = Table("time (UTC)", "service", "action", "actor", "person", "detail", "from", title=title)
    for f in found:
        e = f.entry
        table.add_row(
            e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            f.service,
            e.action,
            f"{e.actor_role or '-'} {e.actor_id or ''}".strip(),
            str(e.person_id or "-"),
            json.dumps(e.detail, ensure_ascii=False, separators=(",", ":")),
            e.client or "-",
        )
    console.print(table)
    console.print(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'}")


@audit_app.command("person")
def audit_person(
    user_id: Annotated[UUID, typer.Argument(help="the person's user_id (identity's account id)")],
    limit: Limit = 1000,
    as_json: AsJson = False,
) -> None:
    """Who read this person's documents, registration form or data, and who decided their cases:
    every service's entries about them, newest first (what a person may ask to know)."""
    found, unread = asyncio.run(collect(person_id=user_id, limit=limit))
    _show(f"audit trail of person {user_id}", found, unread, as_json)


@audit_app.command("staff")
def audit_staff(
    staff_id: Annotated[UUID, typer.Argument(help="the staff member's user_id")],
    limit: Limit = 1000,
    as_json: AsJson = False,
) -> None:
    """What this staff member read, decided or changed, in every service, newest first."""
    found, unread = asyncio.run(collect(actor_id=staff_id, limit=limit))
    _show(f"audit trail of staff member {staff_id}", found, unread, as_json)
