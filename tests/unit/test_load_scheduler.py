"""The open-loop scheduler (tests/load/generator.py): when journeys are due, and what it records."""

import asyncio

import pytest

from tests.load.generator import intended_offsets, open_loop


def test_journeys_are_due_at_a_fixed_rate_whatever_the_earlier_ones_do() -> None:
    assert intended_offsets(2.0, 5) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert intended_offsets(0.5, 3) == [0.0, 2.0, 4.0]
    assert intended_offsets(1.0, 0) == []


def test_no_journey_is_due_after_max_seconds() -> None:
    assert intended_offsets(2.0, 100, max_seconds=1.0) == [0.0, 0.5, 1.0]
    assert intended_offsets(2.0, 2, max_seconds=10.0) == [0.0, 0.5]


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        intended_offsets(0.0, 3)


async def test_each_job_gets_its_intended_start_not_its_actual_one() -> None:
    seen: dict[int, float] = {}

    async def job(index: int, intended: float) -> int:
        seen[index] = intended
        return index * 10

    run = await open_loop(job, rate=200.0, count=4)
    firsts = seen[0]
    assert [round(seen[i] - firsts, 6) for i in range(4)] == [0.0, 0.005, 0.01, 0.015]
    assert [o.result for o in run.outcomes] == [0, 10, 20, 30]
    assert all(o.ended is not None and not o.cancelled for o in run.outcomes)
    assert run.window == pytest.approx(0.015)


async def test_jobs_still_running_at_the_drain_deadline_are_cancelled_and_said_so() -> None:
    async def job(index: int, intended: float) -> str:
        if index == 1:
            await asyncio.Event().wait()  # never finishes
        return "done"

    run = await open_loop(job, rate=100.0, count=2, drain_seconds=1.0)
    first, stuck = run.outcomes
    assert (first.result, first.cancelled) == ("done", False) and first.ended is not None
    assert stuck.cancelled and stuck.ended is None and stuck.result is None
