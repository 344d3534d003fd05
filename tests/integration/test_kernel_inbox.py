"""kernel.inbox on the real PostgreSQL: two connections delivering the same notification, and
what a delivery that did not commit leaves behind (nothing)."""

import asyncio

import asyncpg
import pytest

from kernel.db import Connection
from kernel.eventstore import EventStore
from kernel.inbox import Handle, PostgresInbox, Result
from kernel.unit_of_work import PostgresUnitOfWork
from tests.support.events import KernelPing


class Boom(Exception):
    pass


async def rows(pool: asyncpg.Pool) -> list[tuple[str, str, object]]:
    found = await pool.fetch("SELECT source, external_id, result FROM inbox ORDER BY source, external_id")
    return [(r["source"], r["external_id"], r["result"]) for r in found]


@pytest.mark.parametrize("first_commits", [True, False])
async def test_two_connections_deliver_the_same_notification(
    pool: asyncpg.Pool, store: EventStore, first_commits: bool
) -> None:
    calls: list[int] = []

    def settle(conn: Connection, n: int) -> Handle:
        async def handle() -> Result:
            calls.append(n)
            await store.append(conn, f"settlement-{n}", 0, [KernelPing(n=n)], correlation_id="c")
            return {"settlement": n}

        return handle

    async with pool.acquire() as one, pool.acquire() as two:
        first_tx = one.transaction()
        await first_tx.start()
        first = await PostgresInbox(one).receive("bank", "tx-1", settle(one, 1))

        async def deliver_again() -> tuple[bool, object]:
            async with two.transaction():
                receipt = await PostgresInbox(two).receive("bank", "tx-1", settle(two, 2))
            return receipt.repeat, receipt.result

        second = asyncio.create_task(deliver_again())
        await asyncio.sleep(0.3)
        assert not second.done()  # waiting on the first connection's claim
        waits_on = await pool.fetchval("SELECT wait_event FROM pg_stat_activity WHERE pid = $1", two.get_server_pid())
        assert waits_on == "transactionid"  # on the first transaction's claim row
        await (first_tx.commit() if first_commits else first_tx.rollback())
        answer = await second

    assert not first.repeat and first.result == {"settlement": 1}
    if first_commits:
        assert answer == (True, {"settlement": 1}) and calls == [1]
    else:
        assert answer == (False, {"settlement": 2}) and calls == [1, 2]
    winner = 1 if first_commits else 2
    assert await rows(pool) == [("bank", "tx-1", {"settlement": winner})]
    assert await pool.fetchval("SELECT array_agg(stream_id) FROM events") == [f"settlement-{winner}"]


async def test_a_rolled_back_first_try_leaves_no_record(pool: asyncpg.Pool, store: EventStore) -> None:
    async def handle() -> Result:
        await uow.events.append("settlement-1", 0, [KernelPing(n=1)], correlation_id="c")
        return {"settlement": 1}

    with pytest.raises(Boom):
        async with PostgresUnitOfWork(store, pool=pool) as uow:
            await uow.inbox.receive("bank", "tx-1", handle)
            raise Boom  # e.g. writing the projection failed after the settlement was decided
    assert await rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
    async with PostgresUnitOfWork(store, pool=pool) as uow:
        receipt = await uow.inbox.receive("bank", "tx-1", handle)
    assert not receipt.repeat
    assert await rows(pool) == [("bank", "tx-1", {"settlement": 1})]


async def test_a_failed_handler_caught_by_the_caller_leaves_no_claim(pool: asyncpg.Pool, store: EventStore) -> None:
    """The claim sits in a savepoint: a committed transaction never holds a claim without its result."""

    async def failing() -> Result:
        await uow.events.append("settlement-1", 0, [KernelPing(n=1)], correlation_id="c")
        raise Boom

    async with PostgresUnitOfWork(store, pool=pool) as uow:
        with pytest.raises(Boom):
            await uow.inbox.receive("bank", "tx-1", failing)
        await uow.conn.execute("CREATE TABLE kept (n int)")  # the rest of the transaction goes on
    assert await rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
    assert await pool.fetchval("SELECT to_regclass('kept') IS NOT NULL")


async def test_a_unit_on_the_consumer_connection_is_a_savepoint(pool: asyncpg.Pool, store: EventStore) -> None:
    """A handler's unit on the consumer's connection rolls back only its own writes."""
    async with pool.acquire() as conn, conn.transaction():
        await store.append(conn, "consumer-side", 0, [KernelPing(n=0)], correlation_id="c")
        with pytest.raises(Boom):
            async with PostgresUnitOfWork(store, conn=conn) as uow:
                await uow.events.append("handler-side", 0, [KernelPing(n=1)], correlation_id="c")
                raise Boom
        async with PostgresUnitOfWork(store, conn=conn) as uow:
            await uow.inbox.receive("bank", "tx-1", _answer)
    assert await pool.fetchval("SELECT array_agg(stream_id) FROM events") == ["consumer-side"]
    assert await rows(pool) == [("bank", "tx-1", {"ok": True})]


async def _answer() -> Result:
    return {"ok": True}
