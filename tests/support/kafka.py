"""The Kafka side of integration tests: one producer fixture, and publishing envelopes as their
producers would (to the session's test topic of their event type)."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.envelope import Envelope
from contracts.events import topic_of
from kernel.relay import new_producer
from ops.kafka_ops import partitions_of
from tests.support.infra import KAFKA_ADMIN, topic


@pytest.fixture
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    """A started producer configured as the services' own (kernel.relay), stopped after the test."""
    p = new_producer(KAFKA_ADMIN, client_id="test")
    await p.start()
    yield p
    await p.stop()


async def publish(producer: AIOKafkaProducer, envelopes: Sequence[Envelope]) -> None:
    """Each envelope to the test topic of its event type, keyed and with headers as the relay sends it."""
    for e in envelopes:
        await producer.send_and_wait(
            topic(topic_of(e.event_type)), e.to_json(), key=e.kafka_key(), headers=e.kafka_headers()
        )


async def eventually(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 30.0) -> Any:
    for _ in range(int(seconds / 0.1)):
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


async def end_offsets(name: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options())
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(await partitions_of(KAFKA_ADMIN, [name], wait_seconds=5)))
    finally:
        await consumer.stop()


async def published_after(start: dict[TopicPartition, int], matches: Callable[[Any], bool], wait: float) -> list[Any]:
    """Every record after `start` whose JSON value `matches`, read for `wait` seconds."""
    consumer = AIOKafkaConsumer(**KAFKA_ADMIN.options(), enable_auto_commit=False)
    await consumer.start()
    found: list[Any] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [value for r in records if matches(value := json.loads(r.value))]
        return found
    finally:
        await consumer.stop()
