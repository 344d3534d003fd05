"""Event store append: one event per commit against ~100 events per commit, and 8 connections.

Every event starts a new stream (expected version 0), so no variant pays the stream-version
check of `append_envelopes`, and the comparison isolates the cost of a commit.
"""

import asyncio
from uuid import uuid4

import asyncpg

from contracts.envelope import Envelope
from kernel.eventstore import EventStore
from tests.bench.measure import Result, Work, run_variant
from tests.support.events import KernelPing

BATCH = 100
CONNECTIONS = 8
_PUBLISHED = {(KernelPing.event_type, KernelPing.schema_version)}


def _envelopes(prefix: str, start: int, count: int, correlation_id: str) -> list[Envelope]:
    return [
        Envelope.wrap(
            KernelPing(n=n),
            stream_id=f"{prefix}-{n}",
            stream_version=1,
            producer="bench",
            correlation_id=correlation_id,
        )
        for n in range(start, start + count)
    ]


async def bench_store(pool: asyncpg.Pool, store: EventStore, *, single: int, batched: int) -> list[Result]:
    correlation_id = str(uuid4())
    concurrent = single * 2 // CONNECTIONS * CONNECTIONS
    in_one_tx = batched // 4 // BATCH  # the slowest variant: a quarter of the events
    batches = batched // BATCH

    async with pool.acquire() as conn:
        # Warm up: connection, prepared statements, JSON codecs.
        for n in range(20):
            await store.append(conn, f"warm-{n}", 0, [KernelPing(n=n)], correlation_id=correlation_id)

        async def one_per_tx(work: Work) -> None:
            for n in range(single):
                with work.unit():
                    await store.append(conn, f"one-{n}", 0, [KernelPing(n=n)], correlation_id=correlation_id)

        async def append_envelopes(work: Work) -> None:
            for b in range(batches):
                with work.unit():
                    envelopes = _envelopes("env", b * BATCH, BATCH, correlation_id)
                    await store.append_envelopes(conn, envelopes, _PUBLISHED)

        async def appends_in_one_tx(work: Work) -> None:
            for b in range(in_one_tx):
                with work.unit():
                    async with conn.transaction():
                        for n in range(b * BATCH, (b + 1) * BATCH):
                            await store.append(conn, f"tx-{n}", 0, [KernelPing(n=n)], correlation_id=correlation_id)

        async def one_stream_append(work: Work) -> None:
            for b in range(batches):
                with work.unit():
                    pings = [KernelPing(n=n) for n in range(BATCH)]
                    await store.append(conn, f"stream-{b}", 0, pings, correlation_id=correlation_id)

        results = [
            await run_variant("1 event/commit, 1 conn", single, one_per_tx),
            await run_variant(f"{BATCH} streams/commit, append_envelopes", batches * BATCH, append_envelopes),
            await run_variant(f"{BATCH} append()s in 1 tx (savepoints)", in_one_tx * BATCH, appends_in_one_tx),
            await run_variant(f"{BATCH} events of 1 stream, 1 append()", batches * BATCH, one_stream_append),
        ]

    async def eight_connections(work: Work) -> None:
        per_worker = concurrent // CONNECTIONS

        async def worker(w: int) -> None:
            async with pool.acquire() as conn:
                for n in range(per_worker):
                    with work.unit():
                        await store.append(conn, f"par{w}-{n}", 0, [KernelPing(n=n)], correlation_id=correlation_id)

        await asyncio.gather(*(worker(w) for w in range(CONNECTIONS)))

    # Open and warm all eight connections before timing.
    async def touch(w: int) -> None:
        async with pool.acquire() as conn:
            await store.append(conn, f"warm-c{w}", 0, [KernelPing(n=w)], correlation_id=correlation_id)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(touch(w) for w in range(CONNECTIONS)))
    results.append(await run_variant(f"1 event/commit, {CONNECTIONS} conns", concurrent, eight_connections))

    stored = await pool.fetchval("SELECT count(*) FROM events WHERE stream_id NOT LIKE 'warm-%'")
    assert stored == sum(r.events for r in results), (stored, [r.events for r in results])
    return results
