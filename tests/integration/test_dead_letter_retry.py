"""An operator's dead-letter round trip: a handler fails, the message is dead-lettered, the cause
is fixed, `flexctl dlq retry` sends it back and it is handled exactly once."""

import asyncio

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from contracts.envelope import Envelope
from kernel.consumer import IdempotentConsumer, subscribe
from kernel.db import Connection
from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay, new_producer
from kernel.settings import ServiceSettings
from ops.flexctl import _clear_dead_lettered
from ops.kafka_ops import read_dead_letters, retry_dead_letters
from tests.support.events import KernelPing
from tests.support.infra import KAFKA_ADMIN, KERNEL_TEST_ROLE, unique_name


async def test_dead_letter_retry_after_the_cause_is_fixed(
    pool: asyncpg.Pool, store: EventStore, schema: str, topic: str
) -> None:
    await pool.execute("CREATE TABLE effects (n int NOT NULL)")
    broken = True

    async def handler(conn: Connection, envelope: Envelope) -> None:
        if broken:
            raise RuntimeError("downstream rule not configured yet")
        await conn.execute("INSERT INTO effects (n) VALUES ($1)", envelope.data["n"])

    producer: AIOKafkaProducer = new_producer(KAFKA_ADMIN, client_id="test")
    await producer.start()
    group = unique_name("g")
    broker = KafkaBroker(KAFKA_ADMIN.bootstrap, security=KAFKA_ADMIN.security(), logger=None)
    consumer = IdempotentConsumer(group, pool, producer, topic + ".dlq", {"KernelPing": handler}, max_attempts=2)
    subscribe(broker, consumer, [topic])
    await broker.start()
    try:
        async with pool.acquire() as conn:
            await store.append(conn, "s", 0, [KernelPing(n=5)], correlation_id="c")
        await OutboxRelay(pool, store, producer, topic).drain()
        letters = []
        for _ in range(100):
            letters = await read_dead_letters(KAFKA_ADMIN, topic + ".dlq")
            if letters:
                break
            await asyncio.sleep(0.1)
        assert len(letters) == 1 and letters[0].headers["dlq.consumer"] == group
        assert "downstream rule not configured yet" in letters[0].headers["dlq.error"]

        broken = False  # the operator fixed the cause
        await _clear_dead_lettered(ServiceSettings(service=KERNEL_TEST_ROLE, schema_name=schema), letters)
        assert await retry_dead_letters(KAFKA_ADMIN, letters) == 1
        for _ in range(100):
            if await pool.fetchval("SELECT count(*) FROM effects"):
                break
            await asyncio.sleep(0.1)
        assert await pool.fetchval("SELECT array_agg(n) FROM effects") == [5]
        assert await pool.fetchval("SELECT outcome FROM processed_events WHERE consumer = $1", group) == "handled"
    finally:
        await broker.stop()
        await producer.stop()
