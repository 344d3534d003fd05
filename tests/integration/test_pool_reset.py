"""What a pooled connection carries back to the pool (kernel.db): session state is reset on
release only where some was given, so that an ordinary request pays no reset round trip."""

from uuid import uuid4

import asyncpg
import pytest

from tests.support.infra import KERNEL_TEST_ROLE, connect_as, service_pool


async def _last_query(schema: str, pid: int) -> str:
    """What the backend `pid` ran last, seen from another session of the same role."""
    other = await connect_as(KERNEL_TEST_ROLE, schema)
    try:
        return str(await other.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await other.close()


async def test_an_ordinary_connection_goes_back_without_a_reset_query(schema: str) -> None:
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 1)
    try:
        marker = f"SELECT 'ordinary {uuid4()}'"
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.fetchval(marker)
        assert await _last_query(schema, pid) == marker
    finally:
        await pool.close()


async def test_a_session_lock_left_behind_is_released_with_the_connection(schema: str) -> None:
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 1)
    key = f"{schema}.leak"
    other = await connect_as(KERNEL_TEST_ROLE, schema)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key)
            assert not await other.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key)
        # Released to the pool (still open, the only one) without unlocking: the pool unlocked.
        assert await other.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key)
        await other.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
    finally:
        await other.close()
        await pool.close()


@pytest.mark.filterwarnings("ignore:.*active notification listener")  # left behind on purpose
async def test_a_listen_left_behind_is_removed_with_the_connection(schema: str) -> None:
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 1)
    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            await conn.add_listener(f"{schema}_chan", lambda *_: None)
            assert await conn.fetch("SELECT pg_listening_channels()")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid  # the same session, handed out again
            assert await conn.fetch("SELECT pg_listening_channels()") == []
            marker = f"SELECT 'after {uuid4()}'"
            await conn.fetchval(marker)
        assert await _last_query(schema, pid) == marker  # and reset once only
    finally:
        await pool.close()


async def test_an_open_transaction_is_still_rolled_back(schema: str) -> None:
    pool: asyncpg.Pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS kept (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO kept VALUES (1)")
        assert await pool.fetchval("SELECT count(*) FROM kept") == 0
    finally:
        await pool.close()
