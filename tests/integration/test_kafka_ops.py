"""`partitions_of` on the real broker: public metadata only, and asking never creates a topic."""

from aiokafka.admin import AIOKafkaAdminClient

from ops.kafka_ops import partitions_of
from tests.support.infra import KAFKA_ADMIN, create_topics, delete_topics, unique_name


async def topic_names() -> list[str]:
    admin = AIOKafkaAdminClient(**KAFKA_ADMIN.options())
    await admin.start()
    try:
        names: list[str] = await admin.list_topics()
        return names
    finally:
        await admin.close()


async def test_existing_topics_give_their_partitions_in_the_order_asked(topic: str) -> None:
    other = unique_name("test.other")
    await create_topics([other], partitions=2)
    try:
        found = await partitions_of(KAFKA_ADMIN, [other, topic], wait_seconds=5)
    finally:
        await delete_topics([other])
    assert [(tp.topic, tp.partition) for tp in found] == [(other, 0), (other, 1), (topic, 0), (topic, 1), (topic, 2)]


async def test_a_missing_topic_is_absent_and_not_created_by_asking() -> None:
    missing = unique_name("test.missing")
    assert await partitions_of(KAFKA_ADMIN, [missing]) == []
    assert await partitions_of(KAFKA_ADMIN, [missing], wait_seconds=0.3) == []
    assert missing not in await topic_names()
