"""Projection rebuild from the topics against a raw consumer reading them, at growing sizes.

Fresh topics (the rebuild's four, under a prefix of the run's own) are filled with realistic
journeys (tests/bench/template.py) up to each size in turn; at each size a raw consumer reads
them all, then `flexctl projection rebuild enrollment-status` rebuilds the status projection of
a fresh enrollment schema from them. Both run as worker processes (tests/bench/rebuild_worker.py)
so that each peak RSS is the process's own. Topics and schema are deleted at the end.
"""

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from kernel.db import migrate, migrations_from
from services.enrollment import rebuild
from tests.bench.cpu import measured
from tests.bench.report import Comparison, Run
from tests.bench.template import JourneyTemplate, produce
from tests.support.infra import KAFKA_ADMIN, create_topics, delete_topics, drop_schemas, service_pool, unique_name


@dataclass
class Memory:
    events: int
    start_rss: int
    peak_rss: int


async def _worker(kind: str, schema: str, prefix: str) -> tuple[Run, Memory]:
    with measured() as cpu:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.bench.rebuild_worker", kind, schema, prefix, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await child.communicate()
    assert child.returncode == 0, f"rebuild worker {kind} failed ({child.returncode})"
    found = json.loads(out.decode().strip().splitlines()[-1])
    cpu.process = found["cpu"]  # the worker's own; this process only waited
    label = "flexctl rebuild" if kind == "ours" else "aiokafka consumer"
    run = Run(label, found["events"], found["seconds"], cpu, peak_rss=found["peak_rss"])
    return run, Memory(found["events"], found["start_rss"], found["peak_rss"])


async def bench_rebuild(sizes: Sequence[int]) -> tuple[list[Comparison], list[Memory]]:
    """A comparison per size, and the rebuild's memory at each size."""
    prefix = unique_name("bench") + "."
    topics = [prefix + t for t in rebuild.TOPICS]
    schema = unique_name("bench_rebuild")
    template = JourneyTemplate(rebuild.TOPICS, topic_prefix=prefix)
    comparisons: list[Comparison] = []
    memory: list[Memory] = []
    await create_topics(topics)
    try:
        pool = await service_pool("enrollment", schema, 1, 1)
        try:
            await migrate(pool, schema, migrations_from("services.enrollment"))
        finally:
            await pool.close()
        produced = 0
        for size in sorted(sizes):
            first_copy = -(-produced // len(template))  # a copy of its own for the next records
            produced += await asyncio.to_thread(produce, KAFKA_ADMIN, template.records(first_copy, size - produced))
            raw, _ = await _worker("raw", schema, prefix)
            ours, mem = await _worker("ours", schema, prefix)
            assert raw.events == ours.events == size, (raw.events, ours.events, size)
            comparisons.append(Comparison(f"rebuild from {size:,} events", ours, raw, target=0.5))
            memory.append(mem)
    finally:
        await delete_topics(topics)
        await drop_schemas(schema)
    return comparisons, memory
