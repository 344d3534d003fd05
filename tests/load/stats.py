"""Pure arithmetic of a load run: percentiles, rates, and whether a backlog grew."""

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


SLOWER_BY = 0.5  # seconds of median latency more in the last third than in the first


@dataclass(frozen=True)
class Spread:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        return cls(len(values), percentile(values, 50), percentile(values, 95), percentile(values, 99))


@dataclass(frozen=True)
class Backlog:
    """How the system kept up with the offered rate over the sending window [0, window]."""

    offered_per_s: float
    completed_per_s_last_third: float  # completions within the window's last third, per second (shown)
    in_flight_at_window_end: int  # started and not yet finished when the last journey was due
    latency_ratio_last_to_first_third: float | None  # median latency, last third ÷ first third
    grew: bool


def backlog(starts: Sequence[float], ends: Sequence[float | None], latencies: Sequence[float | None]) -> Backlog:
    """From each journey's intended start, end (None: never finished) and latency, all in seconds on
    one clock starting at 0 with the first journey. A backlog grew when a journey never finished,
    when the last third's journeys took clearly longer than the first third's (by half, and by
    SLOWER_BY), or when far more were in flight at the window's end than the first third's latency
    explains. The completion rate of the last third is reported, not judged: over a short window
    one journey more or less moves it a lot."""
    window = max(starts, default=0.0)
    offered = (len(starts) - 1) / window if window > 0 else 0.0
    third = window / 3
    completed = sum(1 for e in ends if e is not None and window - third <= e <= window)
    rate_last = completed / third if third > 0 else 0.0
    in_flight = sum(1 for s, e in zip(starts, ends, strict=True) if s <= window and (e is None or e > window))
    first = [v for s, v in zip(starts, latencies, strict=True) if v is not None and s < third]
    last = [v for s, v in zip(starts, latencies, strict=True) if v is not None and s >= window - third]
    low, high = percentile(first, 50), percentile(last, 50)
    ratio = high / low if low and high is not None else None
    unfinished = any(e is None for e in ends)
    # Slower by half and by more than SLOWER_BY: a few noisy journeys of 300 ms are no queue.
    slower = low is not None and high is not None and high > 1.5 * low and high - low > SLOWER_BY
    # Little's law: at a steady state about offered × latency journeys are in flight.
    queued = low is not None and in_flight > 2 * offered * low + 2
    grew = unfinished or slower or queued
    return Backlog(offered, rate_last, in_flight, ratio, grew)
