"""Growth: append latency and read rate of the event store at 100k, 1M and 5M rows.

One schema grows from the smallest size to the largest. It is filled server-side (INSERT …
SELECT over generate_series, rows cycling through the data of a realistic journey's events):
nothing crosses the wire, which is faster than COPY from Python and fills the same table and
indexes. At each size:
- append: `EventStore.append` of one event per commit (a new stream) against the raw
  INSERT of tests/bench/raw_store.py, latency p50/p99 per commit;
- read: `EventStore.read_all` (pages of 1,000, envelopes built: what a store-side rebuild of a
  projection or `flexctl` republish reads) over a window in the middle of the log, against a
  plain SELECT of the same columns and pages.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from kernel.db import Connection
from kernel.eventstore import EventStore
from tests.bench.cpu import measured
from tests.bench.raw_store import bench_appends
from tests.bench.report import Comparison, Run
from tests.bench.template import JourneyTemplate

_FILL = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,
                    occurred_at, correlation_id, causation_id, data)
SELECT gen_random_uuid(), 'fill-' || g, 1, ($3::text[])[1 + g % $5], ($4::int[])[1 + g % $5],
       now(), 'fill', NULL, ($6::jsonb[])[1 + g % $5]
FROM generate_series($1::bigint, $2::bigint) AS g
"""
_RAW_PAGE = (
    "SELECT position, event_id, stream_id, stream_version, event_type, schema_version, occurred_at, "
    "correlation_id, causation_id, data FROM events WHERE position > $1 ORDER BY position LIMIT $2"
)
PAGE = 1000


@dataclass
class Growth:
    rows: int
    fill_seconds: float
    append: Comparison
    read: Comparison


async def _fill(conn: Connection, start: int, end: int) -> float:
    envelopes = JourneyTemplate().envelopes(0, 23)
    kinds = ([e.event_type for e in envelopes], [e.schema_version for e in envelopes])
    started = time.perf_counter()
    for low in range(start, end, 500_000):
        await conn.execute(_FILL, low, min(end, low + 500_000) - 1, *kinds, len(envelopes), [e.data for e in envelopes])
    await conn.execute("ANALYZE events")
    return time.perf_counter() - started


async def _read(conn: Connection, store: EventStore, after: int, window: int) -> tuple[Run, Run]:
    async def pages(label: str, ours: bool) -> Run:
        read, position = 0, after
        with measured() as cpu:
            started = time.perf_counter()
            while read < window:
                if ours:
                    stored = await store.read_all(conn, position, PAGE)
                    position = stored[-1].position
                    read += len(stored)
                else:
                    rows = await conn.fetch(_RAW_PAGE, position, PAGE)
                    position = rows[-1]["position"]
                    read += len(rows)
            seconds = time.perf_counter() - started
        return Run(label, read, seconds, cpu)

    return await pages("asyncpg SELECT", False), await pages("EventStore.read_all", True)


async def bench_growth(
    pool: asyncpg.Pool, store: EventStore, sizes: Sequence[int], *, appends: int, window: int
) -> list[Growth]:
    found: list[Growth] = []
    filled = 0  # the fill numbers its streams 1..size: each step adds the rows above the last
    async with pool.acquire() as conn:
        for size in sorted(sizes):
            fill_seconds = await _fill(conn, filled + 1, size + 1)
            filled = size
            raw_append, our_append = await bench_appends(conn, store, appends, tag=f"g{size}")
            rows = int(await conn.fetchval("SELECT count(*) FROM events"))
            raw_read, our_read = await _read(conn, store, rows // 2, min(window, rows // 2))
            found.append(
                Growth(
                    size,
                    fill_seconds,
                    Comparison(f"append at {size:,} rows", our_append, raw_append, target=0.9),
                    Comparison(f"read at {size:,} rows", our_read, raw_read, target=None),
                )
            )
    return found
