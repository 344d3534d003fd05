"""The event store against the real PostgreSQL."""

import asyncio

import asyncpg
import pytest

from kernel.eventstore import ConcurrencyError, EventStore
from tests.support.events import KernelPing


async def test_append_then_load_returns_envelopes_in_version_order(pool: asyncpg.Pool, store: EventStore) -> None:
    async with pool.acquire() as conn:
        written = await store.append(conn, "s-1", 0, [KernelPing(n=1), KernelPing(n=2)], correlation_id="c-1")
        await store.append(conn, "s-1", 2, [KernelPing(n=3)], correlation_id="c-2", causation_id="x")
    loaded = await store.load(pool, "s-1")
    assert [e.stream_version for e in loaded] == [1, 2, 3]
    assert [e.data["n"] for e in loaded] == [1, 2, 3]
    assert loaded[0] == written[0]
    assert loaded[2].causation_id == "x" and loaded[2].producer == "testsvc"
    assert await store.stream_version(pool, "s-1") == 3


async def test_stale_expected_version_is_a_concurrency_error(pool: asyncpg.Pool, store: EventStore) -> None:
    async with pool.acquire() as conn:
        await store.append(conn, "s-2", 0, [KernelPing(n=1)], correlation_id="c")
        with pytest.raises(ConcurrencyError):
            await store.append(conn, "s-2", 0, [KernelPing(n=2)], correlation_id="c")
        with pytest.raises(ConcurrencyError):  # a version from the future leaves no gap either
            await store.append(conn, "s-2", 5, [KernelPing(n=2)], correlation_id="c")
    assert [e.data["n"] for e in await store.load(pool, "s-2")] == [1]


async def test_concurrent_writers_exactly_one_wins(pool: asyncpg.Pool, store: EventStore) -> None:
    async with pool.acquire() as conn:
        await store.append(conn, "s-3", 0, [KernelPing(n=0)], correlation_id="c")

    async def writer(n: int) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            try:
                await store.append(conn, "s-3", 1, [KernelPing(n=n)], correlation_id="c")
                await asyncio.sleep(0.05)  # hold the transaction open while the others try
                return True
            except ConcurrencyError:
                return False

    results = await asyncio.gather(*(writer(n) for n in range(1, 6)))
    assert results.count(True) == 1
    assert len(await store.load(pool, "s-3")) == 2


async def test_read_all_stops_before_an_in_flight_transaction(pool: asyncpg.Pool, store: EventStore) -> None:
    slow = await pool.acquire()
    tx = slow.transaction()
    await tx.start()
    await store.append(slow, "late", 0, [KernelPing(n=1)], correlation_id="c")  # lower position, not committed
    async with pool.acquire() as conn:
        await store.append(conn, "early", 0, [KernelPing(n=2)], correlation_id="c")  # higher position, committed
    assert await store.read_all(pool) == []  # returning "early" now would let a reader skip "late"
    await tx.commit()
    await pool.release(slow)
    seen = await store.read_all(pool)
    assert [s.envelope.stream_id for s in seen] == ["late", "early"]
    assert seen[0].position < seen[1].position
