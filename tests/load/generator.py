"""The open-loop scheduler: journey i is due at i / rate seconds after the start, whether or not
earlier ones have finished, so a slow system builds a queue that its latencies show (each journey
is timed from when it was due, not from when it got going)."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
Job = Callable[[int, float], Awaitable[T]]  # (index, intended start on the monotonic clock)


def intended_offsets(rate: float, count: int, max_seconds: float | None = None) -> list[float]:
    """When each journey is due, in seconds from the start: i / rate, within max_seconds."""
    if rate <= 0 or count < 0:
        raise ValueError("rate must be positive and count not negative")
    last = count if max_seconds is None else min(count, math.floor(max_seconds * rate) + 1)
    return [i / rate for i in range(last) if max_seconds is None or i / rate <= max_seconds]


@dataclass
class Outcome(Generic[T]):
    index: int
    intended: float  # seconds from the run's start
    started: float  # when the generator got it going (its own lag shows here)
    ended: float | None = None  # None: never finished (cancelled at the drain deadline)
    result: T | None = None  # a cancelled journey may still say what it reached
    cancelled: bool = False


@dataclass
class Run(Generic[T]):
    outcomes: list[Outcome[T]]
    window: float  # the last journey's due time
    elapsed: float  # from the start to the last end or the drain deadline

    @property
    def max_lag(self) -> float:
        return max((o.started - o.intended for o in self.outcomes), default=0.0)


async def _timed(job: Job[T], outcome: Outcome[T], t0: float) -> None:
    outcome.result = await job(outcome.index, t0 + outcome.intended)
    if not outcome.cancelled:
        outcome.ended = time.monotonic() - t0


async def open_loop(
    job: Job[T], rate: float, count: int, max_seconds: float | None = None, drain_seconds: float = 60.0
) -> Run[T]:
    """Starts `count` jobs at `rate` per second (none after max_seconds), then waits for the ones
    in flight up to drain_seconds after the last was due, and cancels what is left."""
    offsets = intended_offsets(rate, count, max_seconds)
    t0 = time.monotonic()
    outcomes: list[Outcome[T]] = []
    tasks: list[asyncio.Task[None]] = []
    for index, offset in enumerate(offsets):
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
        outcome: Outcome[T] = Outcome(index, offset, time.monotonic() - t0)
        outcomes.append(outcome)
        tasks.append(asyncio.create_task(_timed(job, outcome, t0)))
    window = offsets[-1] if offsets else 0.0
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, t0 + window + drain_seconds - time.monotonic()))
        for outcome, task in zip(outcomes, tasks, strict=True):
            if task in pending:
                outcome.cancelled = True
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Run(outcomes, window, time.monotonic() - t0)
