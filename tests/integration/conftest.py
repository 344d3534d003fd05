"""Each test gets its own PostgreSQL schema and its own topics, so tests never see each other."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from kernel.db import create_pool, drop_schema, migrate
from kernel.eventstore import EventStore
from tests.support.infra import DATABASE_URL, create_topics, unique_name


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = unique_name("t")
    yield name
    await drop_schema(DATABASE_URL, name)


@pytest.fixture
async def pool(schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(DATABASE_URL, schema, 1, 8)
    await migrate(pool, schema, [])
    yield pool
    await pool.close()


@pytest.fixture
def store(schema: str) -> EventStore:
    return EventStore(producer="testsvc", schema=schema)


@pytest.fixture
async def topic() -> str:
    name = unique_name("test.events")
    await create_topics([name, name + ".dlq"])
    return name
