"""identity's lookup tables, written by its service layer in the transaction of the events that
establish them: what the account stream cannot answer by its id (who has this phone, which
account holds this ID number), what must never be an event (password hashes) and each person's
data key (docs/personal-data.md).

Duplicates are looked up before an insert, so that a refused phone or ID number never reaches
PostgreSQL as a unique violation, whose message (and server log line) would carry the value;
the unique keys stay only to decide a race between two requests.
"""

from collections.abc import Callable
from uuid import UUID

import asyncpg

from kernel.auth import Principal, Role
from kernel.db import Connection, Executor


class PhoneTaken(Exception):
    """Another account registered this phone number first."""


async def phone_registered(db: Executor, phone: str) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM credentials WHERE phone = $1", phone))


async def add_credentials(
    conn: Connection, user_id: UUID, phone: str, password_hash: str, role: Role, agency_code: str | None
) -> None:
    if await phone_registered(conn, phone):
        raise PhoneTaken
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
    except asyncpg.UniqueViolationError as exc:  # the race: registered in between
        raise PhoneTaken from exc


async def credentials_of(db: Executor, phone: str) -> tuple[Principal, str] | None:
    """The principal a phone logs in as (a reviewer's agency as the token's scope) and its hash."""
    row = await db.fetchrow("SELECT user_id, password_hash, role, agency_code FROM credentials WHERE phone = $1", phone)
    if row is None:
        return None
    return Principal(user_id=row["user_id"], role=row["role"], scope=row["agency_code"]), row["password_hash"]


async def phone_of(db: Executor, user_id: UUID) -> str | None:
    phone: str | None = await db.fetchval("SELECT phone FROM credentials WHERE user_id = $1", user_id)
    return phone


# --- data keys -------------------------------------------------------------------------------


async def add_data_key(conn: Connection, user_id: UUID, key: bytes) -> None:
    await conn.execute("INSERT INTO person_keys (user_id, data_key) VALUES ($1, $2)", user_id, key)


async def data_key(db: Executor, user_id: UUID) -> bytes | None:
    key: bytes | None = await db.fetchval("SELECT data_key FROM person_keys WHERE user_id = $1", user_id)
    return key


# --- ID-number bindings (keyed hashes only) ---------------------------------------------------


async def id_number_bound_to(db: Executor, id_number_hmac: bytes) -> UUID | None:
    user_id: UUID | None = await db.fetchval(
        "SELECT user_id FROM id_number_bindings WHERE id_number_hmac = $1", id_number_hmac
    )
    return user_id


async def bind_id_number(conn: Connection, id_number_hmac: bytes, user_id: UUID) -> bool:
    """One ID number binds to one account; False when the number or the account is bound already
    (the caller looked first: this is the race guard, silent by ON CONFLICT)."""
    bound = await conn.fetchval(
        "INSERT INTO id_number_bindings (id_number_hmac, user_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING user_id",
        id_number_hmac,
        user_id,
    )
    return bound is not None


async def has_binding(db: Executor, user_id: UUID) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM id_number_bindings WHERE user_id = $1", user_id))


async def rekey_legacy_bindings(conn: Connection, hmac_of: Callable[[str], bytes]) -> int:
    """Move the clear ID numbers of the legacy table `id_bindings` (migration 001) into
    `id_number_bindings` as keyed hashes; how many moved. Normally none are left: the service runs
    it at start and before every verification and erasure, so a binding is never missed while the
    move is pending. Rows locked by a concurrent move are waited for, then found gone."""
    rows = await conn.fetch("SELECT id_number, user_id, bound_at FROM id_bindings FOR UPDATE")
    if not rows:
        return 0
    await conn.executemany(
        "INSERT INTO id_number_bindings (id_number_hmac, user_id, bound_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(hmac_of(row["id_number"]), row["user_id"], row["bound_at"]) for row in rows],
    )
    await conn.execute("DELETE FROM id_bindings WHERE id_number = ANY($1::text[])", [row["id_number"] for row in rows])
    return len(rows)


# --- erasure ----------------------------------------------------------------------------------


async def erase_person(conn: Connection, user_id: UUID) -> dict[str, bool]:
    """Delete the person's key, login and ID-number binding; which of them there were."""
    key = await conn.fetchval("DELETE FROM person_keys WHERE user_id = $1 RETURNING 1", user_id)
    # The development code sink's texts to their phone (IDENTITY_CODE_SENDER=local_sink) go too.
    await conn.execute(
        "DELETE FROM code_sink WHERE phone = (SELECT phone FROM credentials WHERE user_id = $1)", user_id
    )
    login = await conn.fetchval("DELETE FROM credentials WHERE user_id = $1 RETURNING 1", user_id)
    binding = await conn.fetchval("DELETE FROM id_number_bindings WHERE user_id = $1 RETURNING 1", user_id)
    return {"key": key is not None, "login": login is not None, "id_binding": binding is not None}


# --- token revocation and staff accounts (services/identity/README.md, "Revocation", "Staff") --


async def token_state(db: Executor, user_id: UUID) -> tuple[int, bool]:
    """The account's token version and whether it is disabled (0, False: never revoked)."""
    row = await db.fetchrow("SELECT token_version, disabled FROM account_security WHERE user_id = $1", user_id)
    return (row["token_version"], row["disabled"]) if row else (0, False)


async def revoke_tokens(conn: Connection, user_id: UUID, disabled: bool | None = None) -> int:
    """Bump the account's token version (every token issued so far is refused) and, unless None,
    set `disabled`; the new version."""
    version: int = await conn.fetchval(
        "INSERT INTO account_security (user_id, token_version, disabled) VALUES ($1, 1, coalesce($2, false)) "
        "ON CONFLICT (user_id) DO UPDATE SET token_version = account_security.token_version + 1, "
        "disabled = coalesce($2, account_security.disabled), updated_at = now() RETURNING token_version",
        user_id,
        disabled,
    )
    return version


async def set_disabled(conn: Connection, user_id: UUID, disabled: bool) -> None:
    """Enable (or disable) without revoking: tokens revoked when the account was disabled stay so."""
    await conn.execute(
        "INSERT INTO account_security (user_id, disabled) VALUES ($1, $2) "
        "ON CONFLICT (user_id) DO UPDATE SET disabled = $2, updated_at = now()",
        user_id,
        disabled,
    )


async def revocations(db: Executor) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT user_id, token_version, disabled FROM account_security ORDER BY user_id"))


async def login_of(db: Executor, user_id: UUID) -> tuple[Role, str | None] | None:
    """An account's role and agency, from its credentials (None: no such login)."""
    row = await db.fetchrow("SELECT role, agency_code FROM credentials WHERE user_id = $1", user_id)
    return (row["role"], row["agency_code"]) if row else None


async def set_role(conn: Connection, user_id: UUID, role: Role, agency_code: str | None) -> None:
    await conn.execute(
        "UPDATE credentials SET role = $2, agency_code = $3 WHERE user_id = $1", user_id, role, agency_code
    )


async def set_password_hash(conn: Connection, user_id: UUID, password_hash: str) -> None:
    await conn.execute("UPDATE credentials SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)


async def link_staff_identity(conn: Connection, user_id: UUID, id_number_hmac: bytes) -> bool:
    """False when another staff account is linked to this ID number already."""
    linked = await conn.fetchval(
        "INSERT INTO staff_identities (user_id, id_number_hmac) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING RETURNING user_id",
        user_id,
        id_number_hmac,
    )
    return linked is not None


async def staff_identity(db: Executor, user_id: UUID) -> bytes | None:
    digest: bytes | None = await db.fetchval("SELECT id_number_hmac FROM staff_identities WHERE user_id = $1", user_id)
    return digest


async def id_number_hmac_of(db: Executor, user_id: UUID) -> bytes | None:
    """The keyed hash of the ID number an (applicant's) account is bound to."""
    digest: bytes | None = await db.fetchval(
        "SELECT id_number_hmac FROM id_number_bindings WHERE user_id = $1", user_id
    )
    return digest
