"""Kafka-side operator work: consumer lag, dead letters, retries, reading topics from the start.

Every function connects as the principal of the `KafkaAccess` it is given: flexctl's, whose ACLs
allow exactly this work (ops/broker_access.py), or the tests' admin."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kernel.kafka import KafkaAccess
from kernel.relay import new_producer


@dataclass(frozen=True)
class Lag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


async def consumer_lag(access: KafkaAccess, group_prefix: str = "") -> list[Lag]:
    admin = AIOKafkaAdminClient(**access.options())
    consumer = AIOKafkaConsumer(**access.options())
    await admin.start()
    await consumer.start()
    try:
        return await lag_of(admin, consumer, group_prefix)
    finally:
        await consumer.stop()
        await admin.close()


async def lag_of(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group_prefix: str = "") -> list[Lag]:
    """`consumer_lag` on clients already started (the operators' page keeps its own open)."""
    groups = sorted(g[0] for g in await admin.list_consumer_groups() if g[0].startswith(group_prefix))
    rows: list[Lag] = []
    for group in groups:
        offsets = await admin.list_consumer_group_offsets(group)
        if not offsets:
            continue
        ends = await consumer.end_offsets(list(offsets))
        rows.extend(
            Lag(group, tp.topic, tp.partition, meta.offset, ends[tp])
            for tp, meta in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition))
        )
    return rows


async def read_dead_letters(access: KafkaAccess, topic: str, limit: int = 100) -> list[DeadLetter]:
    """The newest `limit` messages of a dead-letter topic, without joining any group."""
    parts = await partitions_of(access, [topic])
    if not parts:
        return []
    consumer = AIOKafkaConsumer(**access.options(), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(starts[tp], ends[tp] - limit))
        letters: list[DeadLetter] = []
        remaining = {tp for tp in parts if consumer.position and ends[tp] > starts[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            if not batch:
                break
            for tp, records in batch.items():
                letters.extend(
                    DeadLetter(
                        r.partition, r.offset, r.key, r.value, {k: v.decode(errors="replace") for k, v in r.headers}
                    )
                    for r in records
                )
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def retry_dead_letters(access: KafkaAccess, letters: Sequence[DeadLetter]) -> int:
    """Send dead letters back to their original topic (after the cause was fixed).

    The envelope keeps its event_id, so consumers that did handle it meanwhile ignore it; the
    consumer that dead-lettered it recorded the id as dead-lettered, so `flexctl` clears that
    record first (see flexctl dlq retry)."""
    producer = new_producer(access, client_id="flexctl")
    await producer.start()
    try:
        for letter in letters:
            original = letter.headers.get("dlq.original_topic")
            if not original:
                continue
            headers = [(k, v.encode()) for k, v in letter.headers.items() if not k.startswith("dlq.")]
            await producer.send_and_wait(original, letter.value, key=letter.key, headers=headers)
        return len(letters)
    finally:
        await producer.stop()


@dataclass
class Replay:
    """Topics read from their beginning up to the end offsets taken when the replay started.

    No consumer group: partitions are assigned, nothing is committed, no service's group moves.
    Messages that arrive meanwhile are not read (the caller deals with them, e.g. by a union)."""

    consumer: AIOKafkaConsumer
    starts: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]
    missing: list[str] = field(default_factory=list)  # topics that do not exist (yet)

    @property
    def total(self) -> int:
        return sum(self.ends[tp] - self.starts[tp] for tp in self.ends)

    async def batches(
        self, max_records: int = 1000, stall_seconds: float = 60.0
    ) -> AsyncIterator[list[ConsumerRecord]]:
        """Records in batches (each batch from one partition, in offset order) until every
        partition reached its end offset."""
        remaining = {tp for tp in self.ends if self.ends[tp] > self.starts[tp]}
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while remaining:
            fetched = await self.consumer.getmany(*remaining, timeout_ms=500, max_records=max_records)
            for tp, records in fetched.items():
                wanted = [r for r in records if r.offset < self.ends[tp]]
                if wanted:
                    last_progress = loop.time()
                    yield wanted
            for tp in list(remaining):  # by position, not by record: gaps (e.g. markers) end too
                if await self.consumer.position(tp) >= self.ends[tp]:
                    remaining.discard(tp)
            if remaining and loop.time() - last_progress > stall_seconds:
                raise TimeoutError(f"no progress for {stall_seconds:.0f} s on {sorted(map(str, remaining))}")


@asynccontextmanager
async def replay(access: KafkaAccess, topics: Sequence[str]) -> AsyncIterator[Replay]:
    parts = await partitions_of(access, topics)
    missing = [t for t in topics if t not in {tp.topic for tp in parts}]
    consumer = AIOKafkaConsumer(**access.options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = {}
        starts: dict[TopicPartition, int] = {}
        if parts:
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            starts = await consumer.beginning_offsets(parts)
            for tp in parts:
                consumer.seek(tp, starts[tp])
        yield Replay(consumer, starts, ends, missing)
    finally:
        await consumer.stop()


async def partitions_of(access: KafkaAccess, topics: Sequence[str], wait_seconds: float = 0.0) -> list[TopicPartition]:
    """The partitions of those of `topics` that exist, in the order given, from the broker's metadata.

    All topics' metadata is asked for, not the named ones': naming a missing topic would make a
    broker with auto.create.topics.enable create it. With `wait_seconds`, topics just created
    (their metadata not yet everywhere, or their leaders not yet elected) are waited for that long.
    A topic the principal may not describe looks missing: the broker lists only what it may see."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    admin = AIOKafkaAdminClient(**access.options())
    await admin.start()
    try:
        while True:
            known = {
                t["topic"]: sorted(p["partition"] for p in t["partitions"])
                for t in await admin.describe_topics()
                if t["error_code"] == 0 and t["partitions"]
            }
            if all(name in known for name in topics) or loop.time() >= deadline:
                return [TopicPartition(name, p) for name in topics for p in known.get(name, ())]
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
