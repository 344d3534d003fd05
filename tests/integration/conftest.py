"""Each test gets its own PostgreSQL schema and its own topics, so tests never see each other."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from kernel.db import migrate
from kernel.eventstore import EventStore
from tests.support.infra import KERNEL_TEST_ROLE, create_topics, drop_schemas, service_pool, unique_name


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    name = unique_name("t")
    yield name
    await drop_schemas(name)


@pytest.fixture
async def pool(schema: str) -> AsyncIterator[asyncpg.Pool]:
    """The kernel's tables in `schema`, as a service's role (KERNEL_TEST_ROLE) sees them."""
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 8)
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
