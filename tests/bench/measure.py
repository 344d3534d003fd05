"""Timing, latency percentiles and memory of one benchmark variant, and the table that shows them.

Memory is measured two ways while a variant runs:
- RSS peak Δ: the highest resident set size sampled (every 2 ms, /proc/self/statm) minus the
  RSS when the variant started — the whole process, C buffers of asyncpg/aiokafka included.
  Where /proc is missing, the growth of `resource`'s high-water mark is shown instead (which
  stays 0 once an earlier variant set a higher mark).
- heap peak: tracemalloc's peak of Python allocations during the variant, above what was
  allocated when it started — only with `--tracemalloc`, because tracing slows the Python side
  two to three times, and the CPU-bound batched variants more than the commit-bound baselines,
  which would bend the ratios.
"""

import contextlib
import gc
import os
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def nearest_rank(samples: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (0..100) of latency samples, in seconds; None when there are none."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Rated:
    """A run's rate and latency percentiles (mixed into the runs of measure.py and report.py)."""

    events: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    def percentile(self, q: float) -> float | None:
        return nearest_rank(self.latencies, q)


@dataclass
class Result(Rated):
    variant: str
    events: int
    transactions: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    rss_peak_delta: int = 0
    heap_peak: int | None = None


@dataclass
class Work:
    """What a variant's body reports: latency samples are appended, transactions counted."""

    latencies: list[float] = field(default_factory=list)
    transactions: int = 0

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        """Time one unit of work (a transaction, a batch) as one latency sample."""
        started = time.perf_counter()
        yield
        self.latencies.append(time.perf_counter() - started)
        self.transactions += 1


def _rss() -> int | None:
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def _max_rss() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024  # bytes on macOS, KiB on Linux


class _RssSampler:
    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start_rss = _rss()
        self.start_max = _max_rss()
        self.peak = self.start_rss or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss()
            if rss is not None and rss > self.peak:
                self.peak = rss

    def __enter__(self) -> "_RssSampler":
        if self.start_rss is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.start_rss is not None:
            self._stop.set()
            self._thread.join()
            rss = _rss()
            self.peak = max(self.peak, rss or 0)

    @property
    def delta(self) -> int:
        if self.start_rss is None:
            return max(0, _max_rss() - self.start_max)
        return max(0, self.peak - self.start_rss)


async def run_variant(variant: str, events: int, body: Callable[[Work], Awaitable[None]]) -> Result:
    """Run `body` once, timed, with memory watched; `events` is what it processes."""
    gc.collect()
    work = Work()
    tracing = tracemalloc.is_tracing()
    heap_start = 0
    if tracing:
        tracemalloc.reset_peak()
        heap_start = tracemalloc.get_traced_memory()[0]
    with _RssSampler() as rss:
        started = time.perf_counter()
        await body(work)
        seconds = time.perf_counter() - started
    heap_peak = tracemalloc.get_traced_memory()[1] - heap_start if tracing else None
    return Result(
        variant=variant,
        events=events,
        transactions=work.transactions,
        seconds=seconds,
        latencies=work.latencies,
        rss_peak_delta=rss.delta,
        heap_peak=heap_peak,
    )


def _mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.1f} MiB"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.2f}"


def table(title: str, results: Sequence[Result], *, latency_of: str, caption: str | None = None) -> Table:
    """The results as a rich table; the first row is the baseline every ratio refers to."""
    baseline = results[0]
    t = Table(title=title, caption=caption, caption_justify="left", title_justify="left")
    t.add_column("variant", no_wrap=True)
    t.add_column("events", justify="right")
    t.add_column("commits", justify="right")
    t.add_column("seconds", justify="right")
    t.add_column("events/s", justify="right")
    t.add_column("× baseline", justify="right", style="bold")
    t.add_column(f"p50 ms\n/{latency_of}", justify="right")
    t.add_column(f"p99 ms\n/{latency_of}", justify="right")
    t.add_column("RSS peak Δ", justify="right")
    traced = any(r.heap_peak is not None for r in results)
    if traced:
        t.add_column("heap peak", justify="right")
    for r in results:
        memory = [_mib(r.rss_peak_delta), *([_mib(r.heap_peak)] if traced else [])]
        t.add_row(
            r.variant + (" (baseline)" if r is baseline else ""),
            f"{r.events:,}",
            f"{r.transactions:,}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            f"{r.rate / baseline.rate:.2f}×",
            _ms(r.percentile(50)),
            _ms(r.percentile(99)),
            *memory,
        )
    return t
