"""Stopping a background loop that lost a cancellation (kernel/runtime.py `cancel_and_wait`).

Python 3.11's `asyncio.wait_for` returns the inner result when the outer task is cancelled in the
same turn as the inner one completes: the cancellation is lost. The outbox relay once lost its
cancellation that way at a test's end and ran on, and `runtime.stop()` waited for it forever."""

import asyncio
import pathlib
import re

from kernel.runtime import cancel_and_wait

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def test_a_loop_that_swallows_a_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 2:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.02)
    async with asyncio.timeout(10):
        await cancel_and_wait(task, grace_seconds=0.05)
    assert task.done() and swallowed == 3


async def test_a_task_ending_properly_is_given_its_time_and_cancelled_once() -> None:
    cancelled = 0

    async def tidy() -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled += 1
            await asyncio.sleep(0.3)  # giving its connection back, say: not to be interrupted
            raise

    task = asyncio.create_task(tidy())
    await asyncio.sleep(0)
    await cancel_and_wait(task, grace_seconds=1.0)
    assert task.cancelled() and cancelled == 1


async def test_a_task_that_failed_or_ended_is_waited_for_without_raising() -> None:
    async def fails() -> None:
        raise ValueError("gone")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait(failed)
    assert failed.done()


def test_no_service_code_waits_with_asyncio_wait_for() -> None:
    """`asyncio.timeout` keeps a cancellation that arrives with the result; `wait_for` (3.11) not."""
    users = [
        str(path.relative_to(ROOT))
        for folder in ("kernel", "services", "ops", "contracts")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"\basyncio\.wait_for\(", path.read_text(encoding="utf-8"))
    ]
    assert users == []
