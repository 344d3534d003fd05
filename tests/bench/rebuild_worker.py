"""One pass over the rebuild's topics in a process of its own, so that its peak RSS is its own:
`python -m tests.bench.rebuild_worker ours|raw SCHEMA TOPIC_PREFIX` prints one JSON line.

- ours: `flexctl projection rebuild enrollment-status` as ops/rebuild.py runs it (read the
  topics, decode, insert the facts into the shadow table, switch);
- raw: a group-less aiokafka consumer assigned the same partitions, reading every record up to
  the end offsets and touching its value (`len`), nothing else.

Timing and CPU start after the imports and end before the process exits; peak RSS is the
kernel's high-water mark of the whole process (VmHWM), interpreter and imports included, with
the RSS when the work started given too.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from kernel.logging import configure_logging
from ops.kafka_ops import partitions_of
from ops.rebuild import StatusRebuild
from services.enrollment import rebuild
from tests.support.infra import DATABASE_URL, KAFKA_ADMIN, role_password


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


async def ours(schema: str, prefix: str) -> int:
    report = await StatusRebuild(
        DATABASE_URL, schema, KAFKA_ADMIN, topic_prefix=prefix, user="enrollment", password=role_password("enrollment")
    ).run()
    assert report.undecodable == report.failed == 0 and not report.missing_topics, report
    assert report.inserted == report.facts == report.messages, report  # every journey event is a fact
    return report.messages


async def raw(_: str, prefix: str) -> int:
    parts = await partitions_of(KAFKA_ADMIN, [prefix + t for t in rebuild.TOPICS])
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        for tp in parts:  # as ops.kafka_ops.replay does (seek_to_beginning here fetched nothing)
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in parts if ends[tp] > starts[tp]}
        read = size = 0
        while remaining:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=500, max_records=1000)).items():
                read += len(records)
                size += sum(len(r.value or b"") for r in records)
                if records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        assert size > 0
        return read
    finally:
        await consumer.stop()


def main() -> None:
    kind, schema, prefix = sys.argv[1:4]
    configure_logging("bench", level="WARNING", json=False)
    start_rss = _status_kib("VmRSS")
    cpu, started = time.process_time(), time.perf_counter()
    events = asyncio.run((ours if kind == "ours" else raw)(schema, prefix))
    result = {
        "events": events,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "start_rss": start_rss,
        "peak_rss": _status_kib("VmHWM"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
