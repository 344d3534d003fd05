"""One set of cases for every unit-of-work implementation, as a store library runs the same tests
against every recorder: each test here runs once in memory and once on the real PostgreSQL (a
fresh schema per test). What a case cannot ask through the port (what is queued for publishing)
each backend answers in its own way below."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from contracts.envelope import Envelope
from kernel.db import migrate
from kernel.eventstore import EventStore
from kernel.memory import InMemoryState
from kernel.unit_of_work import UnitOfWork, postgres_units
from tests.support.infra import KERNEL_TEST_ROLE, drop_schemas, service_pool, unique_name

PRODUCER = "testsvc"


@dataclass(frozen=True)
class Backend:
    name: str
    units: Callable[[], UnitOfWork]
    published: Callable[[], Awaitable[list[Envelope]]]  # committed events queued for the topic, in order


async def _memory() -> AsyncIterator[Backend]:
    state = InMemoryState(producer=PRODUCER)

    async def published() -> list[Envelope]:
        return list(state.published)

    yield Backend("memory", state.unit_of_work, published)


async def _postgres() -> AsyncIterator[Backend]:
    schema = unique_name("contract")
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 4)
    try:
        await migrate(pool, schema, [])
        store = EventStore(producer=PRODUCER, schema=schema)

        async def published() -> list[Envelope]:
            rows = await pool.fetch("SELECT e.* FROM outbox o JOIN events e USING (position) ORDER BY o.position")
            return [store.envelope_from_row(r) for r in rows]

        yield Backend("postgres", postgres_units(pool, store), published)
    finally:
        await pool.close()
        await drop_schemas(schema)


@pytest.fixture(params=["memory", "postgres"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    make = _memory if request.param == "memory" else _postgres
    async for b in make():
        yield b
