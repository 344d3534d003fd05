"""`python -m tests.bench [--quick] [--only store|consumer|relay|raw-store|raw-relay|rebuild|growth ...]`
(also `make bench`).

The first three compare the kernel's batching with itself at batch size 1; the last four compare
our code with raw asyncpg/aiokafka doing the same work in the same run (issue 10, items 3 and 4;
tests/bench/baselines.py). Each scenario works in its own fresh schema (dropped at the end) and
fresh topics (deleted), against the PostgreSQL and Kafka of tests/support/infra.py
(DATABASE_URL, KAFKA_BOOTSTRAP).
"""

import asyncio
import os
import platform
import time
import tracemalloc
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import asyncpg
import typer
from rich.console import Console

from kernel.db import migrate
from kernel.eventstore import EventStore
from kernel.logging import configure_logging
from kernel.relay import new_producer
from tests.bench.baselines import BaselineSizes, run_baselines
from tests.bench.consumer import bench_consumer
from tests.bench.measure import table
from tests.bench.relay import bench_relay
from tests.bench.store import BATCH, CONNECTIONS, bench_store
from tests.support.infra import (
    ADMIN_URL,
    KAFKA_ADMIN,
    KERNEL_TEST_ROLE,
    drop_schemas,
    service_pool,
    unique_name,
)

console = Console(width=int(os.environ.get("COLUMNS", "150")))


class Scenario(StrEnum):
    store = "store"
    consumer = "consumer"
    relay = "relay"
    raw_store = "raw-store"
    raw_relay = "raw-relay"
    rebuild = "rebuild"
    growth = "growth"


@dataclass(frozen=True)
class Sizes:
    """Events per variant: `single` for one-per-commit baselines, `batched` for the rest."""

    store_single: int
    store_batched: int
    consumer_single: int
    consumer_batched: int
    relay_single: int
    relay_batched: int


FULL = Sizes(2_000, 20_000, 2_000, 20_000, 1_000, 20_000)
QUICK = Sizes(300, 3_000, 300, 3_000, 200, 3_000)
FULL_BASELINES = BaselineSizes(2_000, 20_000, 100_000, (100_000, 1_000_000), (100_000, 1_000_000, 5_000_000))
QUICK_BASELINES = BaselineSizes(
    300, 3_000, 5_000, (5_000, 20_000), (10_000, 30_000, 60_000), growth_appends=200, growth_window=10_000
)


async def _pool(schema: str, max_size: int = 4) -> asyncpg.Pool:
    pool = await service_pool(KERNEL_TEST_ROLE, schema, min_size=1, max_size=max_size)
    await migrate(pool, schema, [])
    return pool


async def _server_settings() -> str:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync, "
            "current_setting('synchronous_commit') AS sc"
        )
        assert row is not None
        return f"PostgreSQL {row['v']} (fsync={row['fsync']}, synchronous_commit={row['sc']})"
    finally:
        await conn.close()


async def run(scenarios: list[Scenario], sizes: Sizes, baselines: BaselineSizes) -> None:
    run_id = unique_name("bench")
    schemas: list[str] = []
    console.print(
        f"[bold]kernel batching benchmarks[/] — {await _server_settings()}, Kafka {KAFKA_ADMIN.bootstrap}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, schema prefix {run_id}, "
        f"tracemalloc {'on' if tracemalloc.is_tracing() else 'off'}"
    )
    try:
        if Scenario.store in scenarios:
            schema = f"{run_id}_store"
            schemas.append(schema)
            pool = await _pool(schema, max_size=CONNECTIONS + 1)
            try:
                results = await bench_store(
                    pool, EventStore("bench", schema), single=sizes.store_single, batched=sizes.store_batched
                )
            finally:
                await pool.close()
            console.print(
                table(
                    "1. Event store append",
                    results,
                    latency_of="commit",
                    caption=f"Latency: one transaction (1 or {BATCH} events) from begin to commit; "
                    "every event opens a new stream.",
                )
            )

        if Scenario.consumer in scenarios:
            schema = f"{run_id}_consumer"
            schemas.append(schema)
            pool = await _pool(schema)
            try:
                results = await bench_consumer(pool, single=sizes.consumer_single, batched=sizes.consumer_batched)
            finally:
                await pool.close()
            console.print(
                table(
                    "2. Idempotent consumer (IdempotentConsumer.handle_batch, one INSERT per event)",
                    results,
                    latency_of="batch",
                    caption="Latency: one handle_batch call (decode, record event_ids, effects, commit). "
                    "Redelivery feeds the same records again: asserted to add no effect and no processed event.",
                )
            )

        if Scenario.relay in scenarios:
            schema = f"{run_id}_relay"
            schemas.append(schema)
            pool = await _pool(schema)
            producer = new_producer(KAFKA_ADMIN, client_id=run_id)
            await producer.start()
            try:
                results = await bench_relay(
                    pool,
                    EventStore("bench", schema),
                    producer,
                    single=sizes.relay_single,
                    batched=sizes.relay_batched,
                )
            finally:
                await producer.stop()
                await pool.close()
            console.print(
                table(
                    "3. Outbox relay (OutboxRelay.publish_batch until the outbox is empty)",
                    results,
                    latency_of="batch",
                    caption="Latency: one batch (lock outbox rows, publish with acks=all, delete, commit). "
                    "Asserted: the fresh topic holds every event.",
                )
            )
        await run_baselines(console, {str(s) for s in scenarios}, baselines, f"{run_id}_raw", schemas)
    finally:
        await drop_schemas(*schemas)


def main(
    quick: Annotated[bool, typer.Option("--quick", help="about a tenth of the events, for a fast look")] = False,
    only: Annotated[list[Scenario] | None, typer.Option("--only", help="run only this scenario (repeatable)")] = None,
    trace_memory: Annotated[
        bool,
        typer.Option(
            "--tracemalloc/--no-tracemalloc",
            help="also measure the Python heap peak per variant (slows the Python side 2-3×, bends ratios)",
        ),
    ] = False,
) -> None:
    """Benchmarks of the kernel's batching, with ratios against a baseline run in the same process."""
    configure_logging("bench", level="WARNING", json=False)
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    asyncio.run(run(only or list(Scenario), QUICK if quick else FULL, QUICK_BASELINES if quick else FULL_BASELINES))
    console.print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    typer.run(main)
