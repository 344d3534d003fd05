"""Exactly-once handling of incoming notifications (a payment channel's "paid" callback, …).

A sender retries until it hears back, and may deliver the same notification twice at once.
`receive(source, external_id, handle)` runs `handle()` only for the first delivery of
`(source, external_id)` and records its result (a JSON object) in the caller's transaction,
together with whatever events `handle()` appended; every later delivery gets that first result
back, marked as a repeat, and causes nothing.

How (PostgreSQL, table `inbox`, kernel migration 001): the key is claimed first with an insert
that skips on conflict. A second delivery arriving while the first is still in its transaction
waits on that row: if the first commits, the second answers the first's result; if it rolls
back, the second claims the key and handles the notification itself. Claim, `handle()` and
record run in a savepoint, so a `handle()` that raises leaves neither a claim nor its events,
even when the caller catches the error and commits the rest. Needs READ COMMITTED (the
default), where the statement after the wait sees the row the first delivery committed.

Services reach it through their unit of work (`uow.inbox.receive(...)`, `kernel.unit_of_work`);
`kernel.memory` has the in-memory twin, and tests/contract runs the same cases against both.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.db import Connection

# What a handler answers: a JSON object, stored as jsonb and given back to every repeat.
Result = dict[str, Any]
Handle = Callable[[], Awaitable[Result]]

_CLAIM = """
INSERT INTO inbox (source, external_id) VALUES ($1, $2)
ON CONFLICT (source, external_id) DO NOTHING
RETURNING received_at
"""
_RECORD = "UPDATE inbox SET result = $3::text::jsonb WHERE source = $1 AND external_id = $2 RETURNING result"
_FIRST = "SELECT result, received_at FROM inbox WHERE source = $1 AND external_id = $2"


def encode_result(result: Result) -> str:
    """A handler's result as JSON text; a TypeError for what JSON cannot hold (before anything is written)."""
    if not isinstance(result, dict):
        raise TypeError(f"an inbox handler answers a JSON object, not {type(result).__name__}")
    return json.dumps(result)


@dataclass(frozen=True)
class Receipt:
    """The answer to one delivery: the first delivery's result, and whether this was a repeat."""

    result: Result
    repeat: bool
    received_at: datetime


class PostgresInbox:
    """The inbox on one connection, inside the transaction its caller opened."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def receive(self, source: str, external_id: str, handle: Handle) -> Receipt:
        async with self.conn.transaction():  # a savepoint inside the caller's transaction
            received_at = await self.conn.fetchval(_CLAIM, source, external_id)
            if received_at is None:  # handled before (we waited if that was still in flight)
                row = await self.conn.fetchrow(_FIRST, source, external_id)
                assert row is not None and row["result"] is not None, "a committed claim always has its result"
                return Receipt(result=row["result"], repeat=True, received_at=row["received_at"])
            result = encode_result(await handle())
            # Read back what jsonb stored, so the first answer and every repeat are the same value.
            stored = await self.conn.fetchval(_RECORD, source, external_id, result)
            return Receipt(result=stored, repeat=False, received_at=received_at)
