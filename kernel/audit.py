"""The access audit trail: who looked at or changed what about a person, when, and from where.

Every service has the table `audit_trail` in its own schema (kernel migration
`002_audit_trail.sql`); it is append-only: triggers refuse UPDATE, DELETE and TRUNCATE whoever
runs them, the service's own role included, so a staff member cannot cover their tracks through
any service. What is recorded (docs/access-audit.md):
- every read by staff of a person's documents, registration form or unmasked data (enrollment,
  review's case view);
- every review decision (review), in the decision's own transaction;
- every change of a staff account (identity).

A row names people by id only (no names, no numbers): a person's erasure leaves the trail whole,
and the trail answers "who looked at my file" (`flexctl audit person USER_ID`) and "what did this
staff member do" (`flexctl audit staff STAFF_ID`).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request

from kernel.auth import Principal
from kernel.db import Connection, Executor

_MAX_CLIENT = 200  # an address, perhaps with a port: never a free text of any length


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: UUID | None
    actor_role: str | None
    action: str
    person_id: UUID | None
    detail: dict[str, Any]
    client: str | None


async def record(
    conn: Connection,
    *,
    actor_id: UUID | None,
    actor_role: str | None,
    action: str,
    person_id: UUID | None,
    detail: Mapping[str, Any],
    client: str | None,
) -> None:
    """Append one entry. Run it in the transaction of what it records when there is one (a
    decision), so that the act and its record commit together; before answering for a read, so
    that nothing is shown that was not recorded. `client`: the remote address."""
    await conn.execute(
        "INSERT INTO audit_trail (actor_id, actor_role, action, person_id, detail, client) "
        "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
        actor_id,
        actor_role,
        action,
        person_id,
        json.dumps(dict(detail), ensure_ascii=False, default=str),
        client[:_MAX_CLIENT] if client is not None else None,
    )


async def record_access(
    conn: Connection,
    principal: Principal,
    action: str,
    person_id: UUID | None,
    detail: Mapping[str, Any],
    client: str | None,
) -> None:
    """`record` for what a logged-in principal did."""
    await record(
        conn,
        actor_id=principal.user_id,
        actor_role=principal.role,
        action=action,
        person_id=person_id,
        detail=detail,
        client=client,
    )


def client_of(request: Request) -> str | None:
    """The remote address of a request (the last proxy's, behind one)."""
    return request.client.host if request.client is not None else None


async def entries(
    conn: Executor, *, person_id: UUID | None = None, actor_id: UUID | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """Entries about a person or by an actor (at least one of them), newest first."""
    if person_id is None and actor_id is None:
        raise ValueError("say whose entries: person_id or actor_id")
    rows = await conn.fetch(
        "SELECT id, at, actor_id, actor_role, action, person_id, detail::text AS detail, client FROM audit_trail "
        "WHERE ($1::uuid IS NULL OR person_id = $1) AND ($2::uuid IS NULL OR actor_id = $2) "
        "ORDER BY at DESC, id DESC LIMIT $3",
        person_id,
        actor_id,
        limit,
    )
    return [
        AuditEntry(
            id=r["id"],
            at=r["at"],
            actor_id=r["actor_id"],
            actor_role=r["actor_role"],
            action=r["action"],
            person_id=r["person_id"],
            detail=json.loads(r["detail"]),
            client=r["client"],
        )
        for r in rows
    ]
