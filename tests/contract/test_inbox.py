"""The inbox of a unit of work: each notification handled once, repeats answered with the first
result; the same promises in memory and on PostgreSQL."""

import asyncio
from typing import Any

import pytest

from kernel.inbox import Handle, Result
from kernel.unit_of_work import UnitOfWork
from tests.contract.conftest import Backend
from tests.contract.events import ContractPing


class Boom(Exception):
    pass


def settle(uow: UnitOfWork, calls: list[str], n: int = 1) -> Handle:
    """A handler like payment's: append one settlement, answer its id."""

    async def handle() -> Result:
        calls.append(f"handled {n}")
        [envelope] = await uow.events.append(f"settlement-{n}", 0, [ContractPing(n=n)], correlation_id="c")
        return {"settlement": envelope.stream_id, "amount_fen": 12_300, "tags": ["bank", None]}

    return handle


async def test_the_first_delivery_is_handled_and_a_repeat_gets_its_result(backend: Backend) -> None:
    calls: list[str] = []
    async with backend.units() as uow:
        first = await uow.inbox.receive("bank", "tx-1", settle(uow, calls))
    async with backend.units() as uow:
        again = await uow.inbox.receive("bank", "tx-1", settle(uow, calls, n=2))
        assert await uow.events.load("settlement-2") == []
    assert calls == ["handled 1"]
    assert not first.repeat and again.repeat
    assert first.result == again.result == {"settlement": "settlement-1", "amount_fen": 12_300, "tags": ["bank", None]}
    assert again.received_at == first.received_at
    assert [e.stream_id for e in await backend.published()] == ["settlement-1"]


async def test_a_repeat_in_the_same_unit_is_a_repeat(backend: Backend) -> None:
    calls: list[str] = []
    async with backend.units() as uow:
        first = await uow.inbox.receive("bank", "tx-1", settle(uow, calls))
        again = await uow.inbox.receive("bank", "tx-1", settle(uow, calls, n=2))
    assert calls == ["handled 1"] and again.repeat and again.result == first.result


async def test_source_and_external_id_together_are_the_key(backend: Backend) -> None:
    calls: list[str] = []
    async with backend.units() as uow:
        receipts = [
            await uow.inbox.receive("bank", "tx-1", settle(uow, calls, n=1)),
            await uow.inbox.receive("bank", "tx-2", settle(uow, calls, n=2)),
            await uow.inbox.receive("alipay", "tx-1", settle(uow, calls, n=3)),
        ]
    assert [r.repeat for r in receipts] == [False, False, False]
    assert calls == ["handled 1", "handled 2", "handled 3"]


async def test_a_rolled_back_unit_leaves_no_record(backend: Backend) -> None:
    calls: list[str] = []
    with pytest.raises(Boom):
        async with backend.units() as uow:
            await uow.inbox.receive("bank", "tx-1", settle(uow, calls))
            raise Boom
    async with backend.units() as uow:
        receipt = await uow.inbox.receive("bank", "tx-1", settle(uow, calls))
    assert not receipt.repeat and calls == ["handled 1", "handled 1"]
    assert len(await backend.published()) == 1


async def test_a_failing_handler_leaves_neither_record_nor_events_even_if_caught(backend: Backend) -> None:
    calls: list[str] = []

    async def failing() -> Result:
        await uow.events.append("settlement-9", 0, [ContractPing(n=9)], correlation_id="c")
        raise Boom

    async with backend.units() as uow:
        await uow.events.append("before", 0, [ContractPing(n=0)], correlation_id="c")
        with pytest.raises(Boom):
            await uow.inbox.receive("bank", "tx-1", failing)
        assert await uow.events.load("settlement-9") == []
    async with backend.units() as uow:
        receipt = await uow.inbox.receive("bank", "tx-1", settle(uow, calls))
    assert not receipt.repeat and calls == ["handled 1"]
    assert [e.stream_id for e in await backend.published()] == ["before", "settlement-1"]


async def test_a_result_that_is_not_json_is_refused(backend: Backend) -> None:
    async def handle() -> Result:
        return {"when": object()}

    with pytest.raises(TypeError):
        async with backend.units() as uow:
            await uow.inbox.receive("bank", "tx-1", handle)


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_concurrent_delivery_waits_for_the_first(backend: Backend, first_commits: bool) -> None:
    calls: list[str] = []
    received, finish = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with backend.units() as uow:
            await uow.inbox.receive("bank", "tx-1", settle(uow, calls, n=1))
            received.set()
            await finish.wait()
            if not first_commits:
                raise Boom

    async def second() -> tuple[bool, Any]:
        await received.wait()
        async with backend.units() as uow:
            receipt = await uow.inbox.receive("bank", "tx-1", settle(uow, calls, n=2))
        return receipt.repeat, receipt.result["settlement"]

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await received.wait()
    await asyncio.sleep(0.2)
    assert not two.done()  # waiting on the first delivery's claim
    finish.set()
    if first_commits:
        await one
        assert await two == (True, "settlement-1")
        assert calls == ["handled 1"]
    else:
        with pytest.raises(Boom):
            await one
        assert await two == (False, "settlement-2")
        assert calls == ["handled 1", "handled 2"]
    assert [e.stream_id for e in await backend.published()] == [f"settlement-{1 if first_commits else 2}"]
