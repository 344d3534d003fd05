"""Our code against the libraries underneath, in the same run (issue 10, items 3 and 4).

- raw-store: `EventStore.append` against asyncpg INSERT and COPY of the same rows
  (tests/bench/raw_store.py), target ≥ 90%;
- raw-relay: `OutboxRelay` draining stored events against an aiokafka producer sending the same
  bytes (tests/bench/raw_relay.py), target ≥ 50%;
- rebuild: `flexctl projection rebuild enrollment-status` from events on the topics against an
  aiokafka consumer reading them (tests/bench/rebuild.py), target ≥ 50%, and the rebuild's peak
  RSS at the smaller and the larger size, flat within 20%;
- growth: append latency and read rate with the store at growing sizes (tests/bench/growth.py).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import asyncpg
from rich.console import Console
from rich.table import Table

from kernel.db import migrate
from kernel.eventstore import EventStore
from kernel.relay import new_producer
from tests.bench.growth import Growth, bench_growth
from tests.bench.raw_relay import bench_raw_relay
from tests.bench.raw_store import bench_raw_store
from tests.bench.rebuild import Memory, bench_rebuild
from tests.bench.report import comparison_table
from tests.support.infra import KAFKA_ADMIN, KERNEL_TEST_ROLE, service_pool

FLAT = 0.2  # the rebuild's peak RSS may grow this much from the smaller size to the larger


@dataclass(frozen=True)
class BaselineSizes:
    store_single: int
    store_batched: int
    relay: int
    rebuild: tuple[int, int]
    growth: tuple[int, ...]
    growth_appends: int = 1_000
    growth_window: int = 50_000


async def _pool(schema: str) -> asyncpg.Pool:
    pool = await service_pool(KERNEL_TEST_ROLE, schema, min_size=1, max_size=2)
    await migrate(pool, schema, [])
    return pool


def _memory_table(memory: Sequence[Memory]) -> Table:
    t = Table(title="Rebuild's peak memory (worker process VmHWM)", title_justify="left")
    for name in ("events", "RSS at start", "peak RSS", "peak − start", "× smallest", ""):
        t.add_column(name, justify="right")
    first = memory[0]
    for m in memory:
        growth = m.peak_rss / first.peak_rss
        t.add_row(
            f"{m.events:,}",
            f"{m.start_rss / 2**20:.0f} MiB",
            f"{m.peak_rss / 2**20:.0f} MiB",
            f"{(m.peak_rss - m.start_rss) / 2**20:.0f} MiB",
            f"{growth:.2f}×",
            "" if m is first else ("PASS" if growth <= 1 + FLAT else "BELOW") + f" (≤ {1 + FLAT:.2f}×)",
        )
    return t


def _growth_table(rows: Sequence[Growth]) -> Table:
    t = Table(title="Growth of the event store", title_justify="left")
    for name in (
        "rows",
        "fill s",
        "append p50 ms\nours / raw",
        "append p99 ms\nours / raw",
        "append ev/s\nours / raw",
        "ratio",
        "read_all ev/s\nours / raw",
        "ratio",
        "CPU-s/1k append\nours / raw",
    ):
        t.add_column(name, justify="right")

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value * 1000:.2f}"

    for g in rows:
        a, r = g.append, g.read
        t.add_row(
            f"{g.rows:,}",
            f"{g.fill_seconds:.0f}",
            f"{ms(a.ours.percentile(50))} / {ms(a.raw.percentile(50))}",
            f"{ms(a.ours.percentile(99))} / {ms(a.raw.percentile(99))}",
            f"{a.ours.rate:,.0f} / {a.raw.rate:,.0f}",
            f"{a.ratio:.0%} {a.verdict}",
            f"{r.ours.rate:,.0f} / {r.raw.rate:,.0f}",
            f"{r.ratio:.0%}",
            f"{a.ours.cpu.per_thousand(a.ours.events)[0]:.3f} / {a.raw.cpu.per_thousand(a.raw.events)[0]:.3f}",
        )
    return t


async def run_baselines(
    console: Console, scenarios: Collection[str], sizes: BaselineSizes, prefix: str, schemas: list[str]
) -> None:
    """Run the baseline scenarios among `scenarios`; their schemas go into `schemas` (the caller drops them)."""
    if "raw-store" in scenarios:
        schemas.append(schema := f"{prefix}_store")
        pool = await _pool(schema)
        try:
            rows = await bench_raw_store(
                pool, EventStore("bench", schema), single=sizes.store_single, batched=sizes.store_batched
            )
        finally:
            await pool.close()
        console.print(comparison_table("4. Event store append against asyncpg", rows, caption=_STORE))
    if "raw-relay" in scenarios:
        schemas.append(schema := f"{prefix}_relay")
        pool = await _pool(schema)
        producer = new_producer(KAFKA_ADMIN, client_id=prefix)
        await producer.start()
        try:
            row = await bench_raw_relay(pool, EventStore("bench", schema), producer, sizes.relay)
        finally:
            await producer.stop()
            await pool.close()
        console.print(comparison_table("5. Outbox relay against aiokafka", [row], caption=_RELAY))
    if "rebuild" in scenarios:
        comparisons, memory = await bench_rebuild(sizes.rebuild)
        console.print(comparison_table("6. Status projection rebuild against aiokafka", comparisons, caption=_REBUILD))
        console.print(_memory_table(memory))
    if "growth" in scenarios:
        schemas.append(schema := f"{prefix}_growth")
        pool = await _pool(schema)
        try:
            grown = await bench_growth(
                pool,
                EventStore("bench", schema),
                sizes.growth,
                appends=sizes.growth_appends,
                window=sizes.growth_window,
            )
        finally:
            await pool.close()
        console.print(_growth_table(grown))
        console.print(_GROWTH)


_STORE = (
    "Same rows (a realistic journey's events, each with its outbox row), same commits; the raw rows are "
    "ready-made, ours builds envelopes from events. CPU: this process, the cluster, the broker."
)
_RELAY = "Same bytes, same producer settings (kernel.relay.new_producer), rounds of 500 awaited like a relay batch."
_REBUILD = (
    "Both in worker processes; 'process' CPU is the worker's own. Every event of the journeys is a status fact, "
    "so the rebuild inserts each one into the shadow table before the switch."
)
_GROWTH = (
    "One schema grown by server-side fills; append: 1 event/commit, new stream each; read_all: pages of 1,000 "
    "from the middle of the log, envelopes built (raw: the same SELECT without the in-flight guard)."
)
