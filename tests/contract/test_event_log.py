"""The event log of a unit of work: the same promises in memory and on PostgreSQL."""

import asyncio
from datetime import UTC, datetime

import pytest

from kernel.eventstore import ConcurrencyError
from tests.contract.conftest import PRODUCER, Backend
from tests.contract.events import ContractNote, ContractPing


class Boom(Exception):
    pass


async def test_append_then_load_round_trip(backend: Backend) -> None:
    async with backend.units() as uow:
        written = await uow.events.append("s", 0, [ContractPing(n=1), ContractPing(n=2)], correlation_id="c")
    async with backend.units() as uow:
        loaded = await uow.events.load("s")
        version = await uow.events.stream_version("s")
        assert await uow.events.load("other") == []
        assert await uow.events.stream_version("other") == 0
    assert loaded == written
    assert [e.data for e in loaded] == [{"n": 1}, {"n": 2}]
    assert {e.producer for e in loaded} == {PRODUCER}
    assert version == 2


async def test_several_events_get_consecutive_versions_and_one_instant(backend: Backend) -> None:
    async with backend.units() as uow:
        await uow.events.append("s", 0, [ContractPing(n=0)], correlation_id="c")
    async with backend.units() as uow:
        written = await uow.events.append("s", 1, [ContractPing(n=n) for n in (1, 2, 3)], correlation_id="c")
    assert [e.stream_version for e in written] == [2, 3, 4]
    assert len({e.occurred_at for e in written}) == 1
    assert len({e.event_id for e in written}) == 3


async def test_correlation_causation_and_given_time_are_kept(backend: Backend) -> None:
    now = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    async with backend.units() as uow:
        await uow.events.append("s", 0, [ContractPing(n=1)], correlation_id="corr", causation_id="cause", now=now)
        await uow.events.append("s", 1, [ContractPing(n=2)], correlation_id="corr")
    async with backend.units() as uow:
        first, second = await uow.events.load("s")
    assert (first.correlation_id, first.causation_id, first.occurred_at) == ("corr", "cause", now)
    assert (second.correlation_id, second.causation_id) == ("corr", None)


async def test_a_new_stream_is_created_once(backend: Backend) -> None:
    async with backend.units() as uow:
        await uow.events.append("s", 0, [ContractPing(n=1)], correlation_id="c")
    with pytest.raises(ConcurrencyError):
        async with backend.units() as uow:
            await uow.events.append("s", 0, [ContractPing(n=2)], correlation_id="c")
    async with backend.units() as uow:
        assert [e.data["n"] for e in await uow.events.load("s")] == [1]


async def test_a_stale_or_future_version_is_refused(backend: Backend) -> None:
    async with backend.units() as uow:
        await uow.events.append("s", 0, [ContractPing(n=1), ContractPing(n=2)], correlation_id="c")
    for wrong in (1, 3, 7):
        with pytest.raises(ConcurrencyError):
            async with backend.units() as uow:
                await uow.events.append("s", wrong, [ContractPing(n=9)], correlation_id="c")
    async with backend.units() as uow:
        await uow.events.append("s", 2, [ContractPing(n=3)], correlation_id="c")
        assert [e.data["n"] for e in await uow.events.load("s")] == [1, 2, 3]


async def test_an_error_rolls_back_everything_the_unit_did(backend: Backend) -> None:
    with pytest.raises(Boom):
        async with backend.units() as uow:
            await uow.events.append("a", 0, [ContractPing(n=1)], correlation_id="c")
            await uow.events.append("b", 0, [ContractPing(n=2)], correlation_id="c")
            raise Boom
    async with backend.units() as uow:
        assert await uow.events.load("a") == [] and await uow.events.load("b") == []
        await uow.events.append("a", 0, [ContractPing(n=3)], correlation_id="c")  # version 1 is free again
    assert [e.data for e in await backend.published()] == [{"n": 3}]


async def test_a_caught_conflict_still_spoils_the_unit(backend: Backend) -> None:
    """PostgreSQL ends a transaction whose append conflicted; a caller that catches the error and
    carries on must not believe its other writes were kept."""
    async with backend.units() as uow:
        await uow.events.append("s", 0, [ContractPing(n=1)], correlation_id="c")
    with pytest.raises(ConcurrencyError):
        async with backend.units() as uow:
            await uow.events.append("other", 0, [ContractPing(n=2)], correlation_id="c")
            with pytest.raises(ConcurrencyError):
                await uow.events.append("s", 0, [ContractPing(n=3)], correlation_id="c")
    async with backend.units() as uow:
        assert await uow.events.load("other") == []


async def test_only_public_events_are_queued_for_publishing(backend: Backend) -> None:
    async with backend.units() as uow:
        await uow.events.append("s", 0, [ContractPing(n=1), ContractNote(n=2), ContractPing(n=3)], correlation_id="c")
        await uow.events.append("t", 0, [ContractNote(n=4)], correlation_id="c")
    async with backend.units() as uow:
        assert len(await uow.events.load("s")) == 3
    published = await backend.published()
    assert [(e.stream_id, e.stream_version, e.event_type) for e in published] == [
        ("s", 1, "ContractPing"),
        ("s", 3, "ContractPing"),
    ]


async def test_a_unit_reads_its_own_writes_and_no_one_else_s_uncommitted(backend: Backend) -> None:
    async with backend.units() as writer:
        await writer.events.append("s", 0, [ContractPing(n=1)], correlation_id="c")
        assert await writer.events.stream_version("s") == 1
        async with backend.units() as reader:
            assert await reader.events.load("s") == []
        assert await backend.published() == []  # nothing queued before the commit
    async with backend.units() as reader:
        assert await reader.events.stream_version("s") == 1


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_concurrent_writer_of_the_same_version_waits_for_the_first(
    backend: Backend, first_commits: bool
) -> None:
    appended, finish = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with backend.units() as uow:
            await uow.events.append("s", 0, [ContractPing(n=1)], correlation_id="c")
            appended.set()
            await finish.wait()
            if not first_commits:
                raise Boom

    async def second() -> int:
        await appended.wait()
        async with backend.units() as uow:
            written = await uow.events.append("s", 0, [ContractPing(n=2)], correlation_id="c")
        return int(written[0].data["n"])

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await appended.wait()
    await asyncio.sleep(0.2)
    assert not two.done()  # blocked on the first's version 1, not failing or succeeding yet
    finish.set()
    if first_commits:
        await one
        with pytest.raises(ConcurrencyError):
            await two
    else:
        with pytest.raises(Boom):
            await one
        assert await two == 2
    async with backend.units() as uow:
        assert [e.data["n"] for e in await uow.events.load("s")] == [1 if first_commits else 2]


async def test_a_unit_is_used_inside_its_block_once(backend: Backend) -> None:
    unit = backend.units()
    with pytest.raises(RuntimeError):
        await unit.events.load("s")
    async with unit:
        pass
    with pytest.raises(RuntimeError):
        await unit.events.load("s")
    with pytest.raises(RuntimeError):
        async with unit:
            pass
