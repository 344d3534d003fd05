"""The recipients read model: user_id -> phone, from identity.events. Order-tolerant: a message
recorded before its recipient's phone waits in `awaiting_recipient` and is released here (or by
the sender's sweep, whichever sees both first)."""

from uuid import UUID

from kernel.db import Connection, Executor

_RELEASE = """
UPDATE sms_messages m SET state = 'pending', phone = r.phone, next_attempt_at = now(), updated_at = now()
FROM recipients r
WHERE m.state = 'awaiting_recipient' AND r.user_id = m.recipient_id AND ($1::uuid IS NULL OR r.user_id = $1)
"""


async def remember_recipient(conn: Connection, user_id: UUID, phone: str) -> None:
    # One UserRegistered per account; a replay brings the same number again.
    await conn.execute(
        "INSERT INTO recipients (user_id, phone) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING", user_id, phone
    )
    await release_awaiting(conn, user_id)


async def phone_of(conn: Executor, user_id: UUID) -> str | None:
    phone: str | None = await conn.fetchval("SELECT phone FROM recipients WHERE user_id = $1", user_id)
    return phone


async def release_awaiting(conn: Executor, user_id: UUID | None = None) -> int:
    """Messages whose recipient's phone is now known become sendable. Returns how many."""
    status = await conn.execute(_RELEASE, user_id)
    return int(status.split()[-1])
