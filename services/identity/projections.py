"""identity's lookup tables, written by its service layer in the transaction of the events that
establish them: what the account stream cannot answer by its id (who has this phone, which
account holds this ID number) and what must never be an event (password hashes).
"""

from uuid import UUID

import asyncpg

from kernel.auth import Principal, Role
from kernel.db import Connection, Executor


class PhoneTaken(Exception):
    """Another account registered this phone number first."""


async def add_credentials(
    conn: Connection, user_id: UUID, phone: str, password_hash: str, role: Role, agency_code: str | None
) -> None:
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction survives the refusal
            await conn.execute(
                "INSERT INTO credentials (user_id, phone, password_hash, role, agency_code) "
                "VALUES ($1, $2, $3, $4, $5)",
                user_id,
                phone,
                password_hash,
                role,
                agency_code,
            )
    except asyncpg.UniqueViolationError as exc:
        raise PhoneTaken from exc


async def credentials_of(db: Executor, phone: str) -> tuple[Principal, str] | None:
    """The principal a phone logs in as (a reviewer's agency as the token's scope) and its hash."""
    row = await db.fetchrow("SELECT user_id, password_hash, role, agency_code FROM credentials WHERE phone = $1", phone)
    if row is None:
        return None
    return Principal(user_id=row["user_id"], role=row["role"], scope=row["agency_code"]), row["password_hash"]


async def bind_id_number(conn: Connection, id_number: str, user_id: UUID) -> bool:
    """One ID number binds to one account; False when the number or the account is bound already."""
    bound = await conn.fetchval(
        "INSERT INTO id_bindings (id_number, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING user_id",
        id_number,
        user_id,
    )
    return bound is not None


async def has_binding(db: Executor, user_id: UUID) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM id_bindings WHERE user_id = $1", user_id))
