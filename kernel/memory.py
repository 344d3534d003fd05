"""The unit of work in memory, for fast unit tests of service layers and handlers.

    state = InMemoryState(producer="payment")
    service = PaymentService(units=state.unit_of_work, ...)
    ...
    assert [e.event_type for e in state.published] == ["PaymentSettled"]

It keeps the promises of `kernel.unit_of_work` (tests/contract runs the same cases against it and
against PostgreSQL): envelopes are built by `kernel.eventstore.new_envelopes`, exactly as the
event store builds them; a unit commits all or nothing on leaving its block; optimistic
concurrency on (stream, version); `published` holds the committed public events in commit order
(what the outbox relay would send). PostgreSQL's blocking is imitated too: a unit writing the
same stream version or inbox key as another unit still open waits for that one to finish, then
sees its outcome, so concurrent cases behave alike. Not thread-safe: one event loop.
"""

import asyncio
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from contracts.envelope import Envelope
from contracts.events.base import Event
from kernel.eventstore import ConcurrencyError, new_envelopes
from kernel.inbox import Handle, Receipt, encode_result


class InMemoryState:
    """What a service's database would hold: the committed streams, inbox and published events."""

    def __init__(self, producer: str) -> None:
        self.producer = producer
        self.streams: dict[str, list[Envelope]] = {}
        self.published: list[Envelope] = []
        self.inbox: dict[tuple[str, str], Receipt] = {}
        self._holders: dict[Hashable, tuple[object, asyncio.Event]] = {}

    def unit_of_work(self) -> "InMemoryUnitOfWork":
        """The factory a service layer is built with, like `kernel.unit_of_work.postgres_units`."""
        return InMemoryUnitOfWork(self)

    def load(self, stream_id: str) -> list[Envelope]:
        """A stream's committed events (for assertions)."""
        return list(self.streams.get(stream_id, []))

    async def _hold(self, key: Hashable, owner: object) -> None:
        """Wait until no other open unit holds `key`, then hold it (a row lock's behaviour)."""
        while (held := self._holders.get(key)) is not None and held[0] is not owner:
            await held[1].wait()
        if held is None:
            self._holders[key] = (owner, asyncio.Event())

    def _release(self, key: Hashable) -> None:
        _, done = self._holders.pop(key)
        done.set()


@dataclass(frozen=True)
class _Savepoint:
    events: int
    inbox: dict[tuple[str, str], Receipt]
    held: int


class InMemoryUnitOfWork:
    def __init__(self, state: InMemoryState) -> None:
        self.state = state
        self._open = False
        self._used = False
        self._pending: list[Envelope] = []
        self._public: set[int] = set()  # indexes into _pending
        self._inbox: dict[tuple[str, str], Receipt] = {}
        self._held: list[Hashable] = []
        self.spoiled: ConcurrencyError | None = None

    @property
    def events(self) -> "InMemoryEventLog":
        self._check_open()
        return InMemoryEventLog(self)

    @property
    def inbox(self) -> "InMemoryInbox":
        self._check_open()
        return InMemoryInbox(self)

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("a unit of work is used once")
        self._used = self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        try:
            if exc_type is None and self.spoiled is not None:
                raise self.spoiled  # PostgreSQL would roll back the failed transaction at COMMIT
            if exc_type is None:
                self._commit()
        finally:
            self._release_from(0)

    def _commit(self) -> None:
        for i, envelope in enumerate(self._pending):
            self.state.streams.setdefault(envelope.stream_id, []).append(envelope)
            if i in self._public:
                self.state.published.append(envelope)
        self.state.inbox.update(self._inbox)

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("the unit of work is used inside `async with` only")

    def _stream(self, stream_id: str) -> list[Envelope]:
        """What this unit sees: committed events, then its own."""
        return self.state.load(stream_id) + [e for e in self._pending if e.stream_id == stream_id]

    async def _hold(self, key: Hashable) -> None:
        await self.state._hold(key, self)
        if key not in self._held:
            self._held.append(key)

    def _savepoint(self) -> _Savepoint:
        return _Savepoint(events=len(self._pending), inbox=dict(self._inbox), held=len(self._held))

    def _rollback_to(self, savepoint: _Savepoint) -> None:
        del self._pending[savepoint.events :]
        self._public = {i for i in self._public if i < savepoint.events}
        self._inbox = savepoint.inbox
        self._release_from(savepoint.held)

    def _release_from(self, index: int) -> None:
        for key in self._held[index:]:
            self.state._release(key)
        del self._held[index:]


class InMemoryEventLog:
    def __init__(self, unit: InMemoryUnitOfWork) -> None:
        self.unit = unit

    async def load(self, stream_id: str) -> list[Envelope]:
        self.unit._check_open()
        return self.unit._stream(stream_id)

    async def stream_version(self, stream_id: str) -> int:
        self.unit._check_open()
        return len(self.unit._stream(stream_id))

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
        self.unit._check_open()
        if not events:
            return []
        try:
            await self._claim(stream_id, expected_version)
        except ConcurrencyError as exc:
            self.unit.spoiled = exc
            raise
        envelopes = new_envelopes(
            self.unit.state.producer,
            stream_id,
            expected_version,
            events,
            correlation_id=correlation_id,
            causation_id=causation_id,
            now=now,
        )
        start = len(self.unit._pending)
        self.unit._pending.extend(envelopes)
        self.unit._public.update(start + i for i, e in enumerate(events) if e.public)
        return envelopes

    async def _claim(self, stream_id: str, expected_version: int) -> None:
        # Like the store: a version beyond the stream's end is refused at once; a writer of the
        # same next version waits for the other unit, then finds it taken (or free after a rollback).
        if len(self.unit._stream(stream_id)) < expected_version:
            raise ConcurrencyError(stream_id, expected_version)
        await self.unit._hold(("stream", stream_id, expected_version + 1))
        if len(self.unit._stream(stream_id)) != expected_version:
            raise ConcurrencyError(stream_id, expected_version)


class InMemoryInbox:
    def __init__(self, unit: InMemoryUnitOfWork) -> None:
        self.unit = unit

    async def receive(self, source: str, external_id: str, handle: Handle) -> Receipt:
        self.unit._check_open()
        key = (source, external_id)
        savepoint = self.unit._savepoint()
        await self.unit._hold(("inbox", key))  # a delivery still in flight elsewhere: wait for it
        first = self.unit.state.inbox.get(key) or self.unit._inbox.get(key)
        if first is not None:
            self.unit._rollback_to(savepoint)  # a repeat locks nothing
            return Receipt(result=first.result, repeat=True, received_at=first.received_at)
        try:
            # Through JSON, as jsonb stores it, so repeats get an equal value, never the same object.
            result = json.loads(encode_result(await handle()))
        except BaseException:
            self.unit._rollback_to(savepoint)
            raise
        receipt = Receipt(result=result, repeat=False, received_at=datetime.now(UTC))
        self.unit._inbox[key] = receipt
        return receipt
