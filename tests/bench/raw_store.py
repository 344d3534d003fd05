"""Event-store append as services use it, against plain asyncpg writing the same rows.

Same rows: each event is a realistic one of an application's journey (tests/bench/template.py)
with an outbox row, as `EventStore.append` writes them. Same commit pattern: one event per
transaction, and 100 events per transaction. The raw baselines get their rows ready-made
before the clock starts (that is what the library alone costs); ours gets the events and builds
the envelopes as a service's append does.

- raw INSERT: one statement (events and outbox in a CTE) per event, in a transaction; for a
  batch, `executemany` of it (asyncpg pipelines the rows);
- raw COPY: `copy_records_to_table` of the events, then one INSERT of their outbox rows;
- ours: `EventStore.append(conn, stream, 0, events, ...)` inside `conn.transaction()`, as a
  service layer's unit of work.

The runs of a comparison take turns (ROUNDS each), so that load from elsewhere on the machine
falls on all of them alike.
"""

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from contracts.envelope import Envelope
from contracts.events import event_class
from contracts.events.base import Event
from kernel.db import Connection
from kernel.eventstore import EventStore, envelope_columns
from tests.bench.cpu import Cpu, measured
from tests.bench.report import Comparison, Run
from tests.bench.template import JourneyTemplate

BATCH = 100
# Turns each run takes, in both comparisons: on a shared machine a burst of load from elsewhere
# lasts seconds, and with 4 turns one run could take most of it (two back-to-back runs of the
# same code read 59% and 89%).
ROUNDS = 20
_RAW_ONE = """
WITH e AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                        occurred_at, correlation_id, causation_id, data)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING position
)
INSERT INTO outbox (position) SELECT position FROM e
"""
_COPY_COLUMNS = (
    "event_id", "stream_id", "stream_version", "event_type", "schema_version",
    "occurred_at", "correlation_id", "causation_id", "data",
)  # fmt: skip

Row = tuple[UUID, str, int, str, int, datetime, str, str | None, dict[str, Any]]
Body = Callable[[Connection, int], Awaitable[None]]


def _rows(envelopes: Sequence[Envelope], tag: str) -> list[Row]:
    columns = envelope_columns(envelopes)
    rows = [tuple(values) for values in zip(*columns, strict=True)]
    # a stream of its own per row and variant: every append opens a new stream (version 1)
    return [(uuid4(), f"{tag}-{n}", 1, *row[3:]) for n, row in enumerate(rows)]


def _binary_jsonb(value: object) -> bytes:
    return b"\x01" + json.dumps(value).encode()


def _events(envelopes: Sequence[Envelope]) -> list[Event]:
    return [event_class(e.event_type, e.schema_version).model_validate(e.data) for e in envelopes]


async def _timed(label: str, conn: Connection, starts: range, body: Body) -> Run:
    """`body` once per start (each one commit), timed; the events are the range's span."""
    latencies: list[float] = []
    with measured() as cpu:
        started = time.perf_counter()
        for start in starts:
            t0 = time.perf_counter()
            await body(conn, start)
            latencies.append(time.perf_counter() - t0)
        seconds = time.perf_counter() - started
    events = starts.stop - starts.start
    return Run(label, events, seconds, cpu, latencies=latencies)


def _raw_insert(rows: list[Row], per_commit: int) -> Body:
    async def body(conn: Connection, start: int) -> None:
        async with conn.transaction():
            if per_commit == 1:
                await conn.execute(_RAW_ONE, *rows[start])
            else:
                await conn.executemany(_RAW_ONE, rows[start : start + per_commit])

    return body


def _raw_copy(rows: list[Row]) -> Body:
    async def body(conn: Connection, start: int) -> None:
        chunk = rows[start : start + BATCH]
        async with conn.transaction():
            await conn.copy_records_to_table("events", records=chunk, columns=_COPY_COLUMNS)
            await conn.execute(
                "INSERT INTO outbox (position) SELECT position FROM events WHERE event_id = ANY($1::uuid[])",
                [r[0] for r in chunk],
            )

    return body


def _ours(store: EventStore, events: list[Event], tag: str, per_commit: int) -> Body:
    correlation = str(uuid4())

    async def body(conn: Connection, start: int) -> None:
        async with conn.transaction():
            await store.append(
                conn, f"{tag}-{start}", 0, events[start : start + per_commit], correlation_id=correlation
            )

    return body


async def bench_appends(conn: Connection, store: EventStore, count: int, *, tag: str) -> tuple[Run, Run]:
    """Raw INSERT and ours, one event per commit, each event a new stream: (raw, ours). They take
    turns in rounds, so that a burst of load from elsewhere on the machine hits both alike."""
    tag = f"{tag}-{uuid4().hex[:8]}"  # streams of this call's own, however often it runs
    envelopes = JourneyTemplate().envelopes(0, count)
    raw_body = _raw_insert(_rows(envelopes, f"{tag}-raw"), 1)
    ours_body = _ours(store, _events(envelopes), f"{tag}-ours", 1)
    raw = Run("asyncpg INSERT", 0, 0.0, Cpu(0.0, 0.0, 0.0))
    ours = Run("EventStore.append", 0, 0.0, Cpu(0.0, 0.0, 0.0))
    step = max(1, count // ROUNDS)
    for start in range(0, count, step):
        part = range(start, min(count, start + step))
        _add(raw, await _timed(raw.label, conn, part, raw_body))
        _add(ours, await _timed(ours.label, conn, part, ours_body))
    return raw, ours


def _add(total: Run, part: Run) -> None:
    total.events += part.events
    total.seconds += part.seconds
    total.latencies += part.latencies
    total.cpu.process += part.cpu.process
    total.cpu.postgres = _plus(total.cpu.postgres, part.cpu.postgres)
    total.cpu.broker = _plus(total.cpu.broker, part.cpu.broker)


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


async def bench_raw_store(pool: asyncpg.Pool, store: EventStore, *, single: int, batched: int) -> list[Comparison]:
    envelopes = JourneyTemplate().envelopes(0, batched)
    events = _events(envelopes)
    run = uuid4().hex[:8]
    batches = range(0, batched, BATCH)
    async with pool.acquire() as conn, pool.acquire() as copying:
        # COPY speaks binary: jsonb's binary form is a version byte, then the same JSON text
        await copying.set_type_codec(
            "jsonb", encoder=_binary_jsonb, decoder=json.loads, schema="pg_catalog", format="binary"
        )
        await bench_appends(conn, store, 50, tag="warm")
        raw_one, ours_one = await bench_appends(conn, store, single, tag="one")
        turns: list[tuple[str, Connection, Body]] = [
            ("asyncpg INSERT (executemany)", conn, _raw_insert(_rows(envelopes, f"rawN-{run}"), BATCH)),
            ("asyncpg COPY", copying, _raw_copy(_rows(envelopes, f"copyN-{run}"))),
            ("EventStore.append", conn, _ours(store, events, f"oursN-{run}", BATCH)),
        ]
        many = [Run(label, 0, 0.0, Cpu(0.0, 0.0, 0.0)) for label, _, _ in turns]
        step = max(1, len(batches) // ROUNDS) * BATCH
        for start in range(0, batched, step):  # in turns, as the one-event comparison
            part = range(start, min(batched, start + step), BATCH)
            for total, (label, connection, body) in zip(many, turns, strict=True):
                _add(total, await _timed(label, connection, part, body))
    best, other = sorted(many[:2], key=lambda r: r.rate, reverse=True)
    return [
        Comparison("append, 1 event/commit", ours_one, raw_one, target=0.9),
        Comparison(f"append, {BATCH} events/commit", many[2], best, target=0.9),
        Comparison(f"append, {BATCH} events/commit", many[2], other, target=None),
    ]
