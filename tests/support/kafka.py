"""The Kafka side of integration tests: one producer fixture, and publishing envelopes as their
producers would (to the session's test topic of their event type)."""

from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.events import topic_of
from kernel.relay import new_producer
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
