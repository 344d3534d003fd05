"""Run the real outbox relay for one schema and topic as its own process (crash tests kill it).

usage: python -m tests.support.relay_process SCHEMA TOPIC BATCH_MAX
"""

import asyncio
import sys

from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay, new_producer
from tests.support.infra import KAFKA_ADMIN, KERNEL_TEST_ROLE, service_pool


async def main(schema: str, topic: str, batch_max: int) -> None:
    pool = await service_pool(KERNEL_TEST_ROLE, schema, 1, 4)
    producer = new_producer(KAFKA_ADMIN, client_id="relay-test")
    await producer.start()
    relay = OutboxRelay(pool, EventStore("testsvc", schema), producer, topic, batch_max=batch_max)
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
