"""Append-only event store on PostgreSQL with optimistic concurrency on (stream_id, version)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from contracts.envelope import Envelope
from contracts.events.base import Event
from kernel.db import Connection, Executor


class ConcurrencyError(Exception):
    """Someone else appended to the stream since it was loaded: reload and decide again."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id} is no longer at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


@dataclass(frozen=True)
class StoredEvent:
    position: int
    envelope: Envelope


_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, "
    "occurred_at, correlation_id, causation_id, data"
)

# One statement writes the events, their outbox rows and the relay's wake-up (delivered at commit,
# only when something was queued), so that an append outside a transaction is one round trip and
# inside one costs one round trip less than a separate NOTIFY (docs/benchmarks.md, "Kernel
# baselines and growth"). The check of an existing stream's version stays a query of its own:
# folded into this statement (a join of `events` with the expected versions) it made every
# append slower, new streams' too.
_APPEND = """
WITH appended AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                        occurred_at, correlation_id, causation_id, data)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::int[],
                         $6::timestamptz[], $7::text[], $8::text[], $9::jsonb[])
    RETURNING position, event_type, schema_version
), queued AS (
    INSERT INTO outbox (position)
    SELECT position FROM appended WHERE (event_type, schema_version) IN
        (SELECT * FROM unnest($10::text[], $11::int[]))
    RETURNING position
)
SELECT pg_notify($12, '') FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued
"""
# The same for one event, the usual append: with scalar parameters PostgreSQL keeps one generic
# plan, where the arrays above are planned again on every execution (their length is unknown to
# a generic plan) and are slower to encode and decode: about 0.07 ms less backend CPU per append.
_APPEND_ONE = """
WITH appended AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                        occurred_at, correlation_id, causation_id, data)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING position
), queued AS (
    INSERT INTO outbox (position) SELECT position FROM appended WHERE $10::boolean RETURNING position
)
SELECT pg_notify($11, '') FROM queued
"""


class EventStore:
    """One service's event log. Methods take a connection so that callers choose the transaction."""

    def __init__(self, producer: str, schema: str | None = None) -> None:
        self.producer = producer
        self.schema = schema or producer
        self.outbox_channel = f"{self.schema}_outbox"

    def envelope_from_row(self, row: asyncpg.Record) -> Envelope:
        return Envelope(
            event_id=row["event_id"],
            event_type=row["event_type"],
            schema_version=row["schema_version"],
            stream_id=row["stream_id"],
            stream_version=row["stream_version"],
            occurred_at=row["occurred_at"],
            producer=self.producer,
            correlation_id=row["correlation_id"],
            causation_id=row["causation_id"],
            data=row["data"],
        )

    async def append(
        self,
        conn: Connection,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        correlation_id: str,
        causation_id: str | None = None,
        now: datetime | None = None,
    ) -> list[Envelope]:
        """Append after `expected_version` (0 for a new stream), or raise ConcurrencyError.

        Call it inside the transaction that also records the decision's other effects.
        """
        if not events:
            return []
        envelopes = new_envelopes(
            self.producer,
            stream_id,
            expected_version,
            events,
            correlation_id=correlation_id,
            causation_id=causation_id,
            now=now,
        )
        await self.append_envelopes(conn, envelopes, published_kinds(events))
        return envelopes

    async def append_envelopes(
        self,
        conn: Connection,
        envelopes: Sequence[Envelope],
        published: set[tuple[str, int]],
    ) -> None:
        """Low-level append of ready envelopes (several streams at once is allowed)."""
        if not envelopes:
            return
        # Without checks one statement is atomic on its own: no BEGIN/COMMIT round trips. Inside
        # the caller's transaction no savepoint either: any error aborts it anyway.
        checks = [(stream_id, first - 1) for stream_id, first in _first_versions(envelopes).items() if first > 1]
        if checks and not conn.is_in_transaction():
            async with conn.transaction():
                await self._insert(conn, envelopes, published, checks)
        else:
            await self._insert(conn, envelopes, published, checks)

    async def _insert(
        self,
        conn: Connection,
        envelopes: Sequence[Envelope],
        published: set[tuple[str, int]],
        checks: Sequence[tuple[str, int]],
    ) -> None:
        for stream_id, version in checks:
            if not await conn.fetchval(
                "SELECT 1 FROM events WHERE stream_id = $1 AND stream_version = $2", stream_id, version
            ):
                raise ConcurrencyError(stream_id, version)
        try:
            sql, args = self._statement(envelopes, published)
            await conn.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name and "stream" in exc.constraint_name:
                raise ConcurrencyError(envelopes[0].stream_id, envelopes[0].stream_version - 1) from exc
            raise

    def _statement(self, envelopes: Sequence[Envelope], published: set[tuple[str, int]]) -> tuple[str, list[Any]]:
        """The append statement and its arguments."""
        if len(envelopes) == 1:
            [e] = envelopes
            return _APPEND_ONE, [*envelope_row(e), (e.event_type, e.schema_version) in published, self.outbox_channel]
        kinds = sorted(published)
        columns = envelope_columns(envelopes)
        return _APPEND, [*columns, [k[0] for k in kinds], [k[1] for k in kinds], self.outbox_channel]

    async def load(self, conn: Executor, stream_id: str) -> list[Envelope]:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version", stream_id
        )
        return [self.envelope_from_row(r) for r in rows]

    async def read_all(self, conn: Executor, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events in log order, never past a transaction that might still commit below them.

        Positions are taken at insert time but become visible at commit time, so a reader that
        just follows positions could pass a gap that a slow transaction fills later. Reading
        only events whose transaction precedes the oldest one still running closes that gap.
        """
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE position > $1 "
            "AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY position LIMIT $2",
            after_position,
            limit,
        )
        return [StoredEvent(position=r["position"], envelope=self.envelope_from_row(r)) for r in rows]

    async def stream_version(self, conn: Executor, stream_id: str) -> int:
        version = await conn.fetchval("SELECT max(stream_version) FROM events WHERE stream_id = $1", stream_id)
        return int(version or 0)


def new_envelopes(
    producer: str,
    stream_id: str,
    expected_version: int,
    events: Sequence[Event],
    *,
    correlation_id: str,
    causation_id: str | None = None,
    now: datetime | None = None,
) -> list[Envelope]:
    """The envelopes an append after `expected_version` stores: consecutive versions, one
    instant, one correlation. Every event log builds them here, so that the in-memory one
    (`kernel.memory`) cannot drift from this store."""
    occurred = now or datetime.now(UTC)
    return [
        Envelope(
            event_id=uuid4(),
            event_type=e.event_type,
            schema_version=e.schema_version,
            stream_id=stream_id,
            stream_version=expected_version + i,
            occurred_at=occurred,
            producer=producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=e.payload(),
        )
        for i, e in enumerate(events, start=1)
    ]


def published_kinds(events: Sequence[Event]) -> set[tuple[str, int]]:
    """The (event_type, schema_version) pairs of `events` that go to the service's topic."""
    return {(e.event_type, e.schema_version) for e in events if e.public}


def _first_versions(envelopes: Sequence[Envelope]) -> dict[str, int]:
    first: dict[str, int] = {}
    for e in envelopes:
        first[e.stream_id] = min(first.get(e.stream_id, e.stream_version), e.stream_version)
    return first


def envelope_row(e: Envelope) -> list[Any]:
    """One envelope's values in the order of the events table's columns (see envelope_columns)."""
    return [
        e.event_id,
        e.stream_id,
        e.stream_version,
        e.event_type,
        e.schema_version,
        e.occurred_at,
        e.correlation_id,
        e.causation_id,
        e.data,
    ]


def envelope_columns(envelopes: Sequence[Envelope]) -> list[list[Any]]:
    """Envelopes as column arrays for an `unnest` insert, in the order of the events table:
    event_id, stream_id, stream_version, event_type, schema_version, occurred_at,
    correlation_id, causation_id, data."""
    return [
        [e.event_id for e in envelopes],
        [e.stream_id for e in envelopes],
        [e.stream_version for e in envelopes],
        [e.event_type for e in envelopes],
        [e.schema_version for e in envelopes],
        [e.occurred_at for e in envelopes],
        [e.correlation_id for e in envelopes],
        [e.causation_id for e in envelopes],
        [e.data for e in envelopes],
    ]


def new_correlation_id() -> str:
    return str(uuid4())


def as_uuid(value: str | UUID) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
