"""The service layer's port to its storage: a unit of work holding an event log and an inbox.

    async with uow_factory() as uow:
        history = await uow.events.load(stream_id)
        ...decide...
        await uow.events.append(stream_id, version, events, correlation_id=...)

Leaving the block normally commits everything the unit did; an exception rolls all of it back
and propagates. A unit is used once. Two implementations keep the same promises, checked by the
one set of cases in tests/contract: `PostgresUnitOfWork` (here: the service's `EventStore` and
`kernel.inbox` on one connection and transaction) and `InMemoryUnitOfWork` (`kernel.memory`),
which gives service-layer and handler logic fast unit tests.

Promises: `append` after `expected_version` (0 for a new stream) or `ConcurrencyError` (a writer
of a version another open unit is writing waits for that unit first); a conflict spoils the unit:
even if caught, leaving the block rolls back and raises it again, so reload and decide in a new
unit. Events get consecutive versions and the given correlation/causation; only public events are
published (the outbox); a unit reads its own uncommitted writes; the inbox answers a repeat with
the first result (see `kernel.inbox`). The PostgreSQL unit also exposes `conn`, so that a service
layer writes its projection rows in the same transaction; built with `postgres_units(pool, store)`,
or on a handler's connection as `PostgresUnitOfWork(store, conn=conn)` (a savepoint).
"""

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from contracts.envelope import Envelope
from contracts.events.base import Event
from kernel.db import Connection
from kernel.eventstore import ConcurrencyError, EventStore
from kernel.inbox import Handle, PostgresInbox, Receipt


class EventLog(Protocol):
    async def load(self, stream_id: str) -> list[Envelope]: ...

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        correlation_id: str,
        causation_id: str | None = None,
        now: datetime | None = None,
    ) -> list[Envelope]:
        """Append after `expected_version`, or raise `kernel.eventstore.ConcurrencyError`."""
        ...

    async def stream_version(self, stream_id: str) -> int: ...


class Inbox(Protocol):
    async def receive(self, source: str, external_id: str, handle: Handle) -> Receipt:
        """Run `handle()` for the first delivery of `(source, external_id)` only."""
        ...


class UnitOfWork(Protocol):
    @property
    def events(self) -> EventLog: ...

    @property
    def inbox(self) -> Inbox: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class PostgresEventLog:
    """`EventStore` bound to the unit's connection."""

    def __init__(self, store: EventStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self.spoiled: ConcurrencyError | None = None

    async def load(self, stream_id: str) -> list[Envelope]:
        return await self.store.load(self.conn, stream_id)

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        correlation_id: str,
        causation_id: str | None = None,
        now: datetime | None = None,
    ) -> list[Envelope]:
        try:
            return await self.store.append(
                self.conn,
                stream_id,
                expected_version,
                events,
                correlation_id=correlation_id,
                causation_id=causation_id,
                now=now,
            )
        except ConcurrencyError as exc:
            self.spoiled = exc
            raise

    async def stream_version(self, stream_id: str) -> int:
        return await self.store.stream_version(self.conn, stream_id)


class PostgresUnitOfWork:
    """One transaction on a connection taken from `pool`, or on `conn` when given.

    With `conn` (a handler on the consumer's connection, already in the consumer's transaction)
    the unit is a savepoint: its rollback undoes only its own writes.
    """

    def __init__(self, store: EventStore, pool: asyncpg.Pool | None = None, conn: Connection | None = None) -> None:
        if (pool is None) == (conn is None):
            raise ValueError("give either a pool or a connection")
        self.store = store
        self._pool = pool
        self._given = conn
        self._used = False
        self._acquired: PoolConnectionProxy | None = None
        self._tx: Transaction | None = None
        self._log: PostgresEventLog | None = None  # set while the block runs

    @property
    def events(self) -> PostgresEventLog:
        if self._log is None:
            raise RuntimeError("the unit of work is used inside `async with` only")
        return self._log

    @property
    def conn(self) -> Connection:
        return self.events.conn

    @property
    def inbox(self) -> PostgresInbox:
        return PostgresInbox(self.conn)

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("a unit of work is used once")
        self._used = True
        conn = self._given
        if conn is None:
            assert self._pool is not None
            conn = self._acquired = await self._pool.acquire()
        self._tx = conn.transaction()
        try:
            await self._tx.start()
        except BaseException:
            await self._release()
            raise
        self._log = PostgresEventLog(self.store, conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tx is not None and self._log is not None
        spoiled, self._log = self._log.spoiled, None
        try:
            if exc_type is None and spoiled is None:
                await self._tx.commit()
            else:
                await self._tx.rollback()
        finally:
            await self._release()
        if exc_type is None and spoiled is not None:
            # The caller caught the conflict and went on: PostgreSQL would turn COMMIT into a
            # silent ROLLBACK of the failed transaction; say so instead of losing the writes quietly.
            raise spoiled

    async def _release(self) -> None:
        if self._acquired is not None and self._pool is not None:
            acquired, self._acquired = self._acquired, None
            # Resetting a connection that a database restart broke fails (asyncpg then terminates
            # it): the work's fate was sealed by COMMIT or ROLLBACK already, and raising here would
            # hide why (found under faults, issue 10: a 500 instead of the outage's 503).
            with contextlib.suppress(Exception):
                await self._pool.release(acquired)


def postgres_units(pool: asyncpg.Pool, store: EventStore) -> Callable[[], PostgresUnitOfWork]:
    """The factory a service layer is built with: `async with units() as uow: ...`."""
    return lambda: PostgresUnitOfWork(store, pool=pool)
