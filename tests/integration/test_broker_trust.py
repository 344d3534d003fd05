"""Trust on the real broker (docs/downstream.md: "Credentials"): every client authenticates, the
ACLs of ops/broker_access.py hold, and a consumer refuses an envelope its topic's owner did not publish."""

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError
from faststream.kafka import KafkaBroker

from contracts.envelope import Envelope
from contracts.events.review import ReviewDecided
from contracts.topics import ENROLLMENT_EVENTS, IDENTITY_EVENTS, REVIEW_EVENTS, dlq_topic
from kernel.consumer import IdempotentConsumer, subscribe
from kernel.db import Connection
from kernel.kafka import KafkaAccess
from kernel.relay import new_producer
from ops import broker_access
from ops.kafka_ops import consumer_lag
from tests.support.infra import (
    KAFKA_ADMIN,
    KAFKA_BOOTSTRAP,
    TOPIC_PREFIX,
    create_topics,
    grant,
    principal,
    read_topic,
    topic,
    unique_name,
)


async def sends(access: KafkaAccess, where: str) -> None:
    producer = new_producer(access, client_id=unique_name("trust"))
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(where, b"{}"), 20)
    finally:
        await producer.stop()


async def test_a_service_writes_its_own_topic_and_the_broker_refuses_it_another_s() -> None:
    identity = principal("identity")
    await sends(identity, topic(IDENTITY_EVENTS))  # its own: accepted
    with pytest.raises(TopicAuthorizationFailedError):
        await sends(identity, topic(REVIEW_EVENTS))
    with pytest.raises(TopicAuthorizationFailedError):  # nor may operators write dead letters
        await sends(principal(broker_access.OPERATOR), topic(dlq_topic("review")))


@pytest.mark.parametrize("who", ["nobody", "wrong password"])
async def test_a_client_without_valid_credentials_cannot_connect(who: str) -> None:
    if who == "nobody":
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=5000)
    else:
        producer = AIOKafkaProducer(**KAFKA_ADMIN.as_principal("identity", "guessed").options())
    try:
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(producer.start(), 30)
    finally:
        await producer.stop()


async def test_a_service_uses_only_its_own_consumer_groups() -> None:
    """Exactly the groups of a fresh environment (no test session's wider grants apply to them)."""
    topic_prefix, group_prefix = unique_name("acl") + ".", unique_name("acl") + "."
    await create_topics([topic_prefix + ENROLLMENT_EVENTS])
    grant(broker_access.topic_bindings(topic_prefix) + broker_access.group_bindings(group_prefix))
    review = principal("review")

    async def joins(group: str) -> None:
        consumer = AIOKafkaConsumer(
            topic_prefix + ENROLLMENT_EVENTS, **review.options(), group_id=group, auto_offset_reset="earliest"
        )
        try:
            await consumer.start()
            await consumer.getmany(timeout_ms=2000)
        finally:
            await consumer.stop()

    await joins(f"{group_prefix}review.cases")
    with pytest.raises(GroupAuthorizationFailedError):
        await joins(f"{group_prefix}enrollment.status")


async def test_operators_see_the_lag_of_every_group_of_the_environment() -> None:
    lag = await consumer_lag(principal(broker_access.OPERATOR), TOPIC_PREFIX)
    assert all(row.group.startswith(TOPIC_PREFIX) for row in lag)


async def test_a_forged_envelope_is_dead_lettered_without_effect(pool: asyncpg.Pool) -> None:
    """On review.events only review publishes: an envelope there that says another producer (an
    outsider with a service's stolen credentials, or a bug) is refused before any handler runs."""
    prefix = unique_name("forged") + "."
    events, dead = prefix + REVIEW_EVENTS, prefix + dlq_topic("notify")
    await create_topics([events, dead])
    example = ReviewDecided.model_json_schema()["examples"][0]

    def decided(producer: str) -> Envelope:
        event = ReviewDecided.model_validate({**example, "case_id": str(uuid4())})
        return Envelope.wrap(
            event, stream_id=f"case-{event.case_id}", stream_version=1, producer=producer, correlation_id="c"
        )

    forged, genuine = decided("identity"), decided("review")
    handled: list[Envelope] = []

    async def on_decided(conn: Connection, envelope: Envelope) -> None:
        handled.append(envelope)

    producer = new_producer(KAFKA_ADMIN, client_id="trust")  # the broker would refuse identity itself
    await producer.start()
    try:
        for envelope in (forged, genuine):
            await producer.send_and_wait(
                events, envelope.to_json(), key=envelope.kafka_key(), headers=envelope.kafka_headers()
            )
        group = unique_name("forged")
        consumer = IdempotentConsumer(
            group, pool, producer, dead, {ReviewDecided.event_type: on_decided}, topic_prefix=prefix
        )
        broker = KafkaBroker(KAFKA_ADMIN.bootstrap, security=KAFKA_ADMIN.security(), logger=None)
        subscribe(broker, consumer, [events])
        await broker.start()
        try:
            for _ in range(300):
                if handled:
                    break
                await asyncio.sleep(0.1)
        finally:
            await broker.stop()
    finally:
        await producer.stop()

    assert [e.event_id for e in handled] == [genuine.event_id]
    [letter] = await read_topic(dead, expect=1)
    headers = dict(letter.headers)  # type: ignore[attr-defined]
    assert headers["dlq.reason"] == b"producer_not_topic_owner"
    assert b"'identity'" in headers["dlq.error"] and headers["dlq.original_topic"] == events.encode()
    assert Envelope.from_json(letter.value).event_id == forged.event_id  # type: ignore[attr-defined]
    recorded = await pool.fetch("SELECT event_id FROM processed_events WHERE consumer = $1", group)
    assert [r["event_id"] for r in recorded] == [genuine.event_id]  # the forged id shadows nothing
