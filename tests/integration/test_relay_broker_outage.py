"""The outbox relay during a broker outage (issue 10, "Resilience bugs found under faults"): it once
kept its transaction open for the whole outage (`idle in transaction` for 50 s). Against the real
database and broker: sends that genuinely cannot complete hold no transaction, leave the rows in the
outbox and log one warning; once the broker takes them, every event is published.

The outage: the relay's topic does not exist and the broker cannot create it, because its name
collides with an existing topic's (Kafka treats "." and "_" alike in topic names), so the producer
waits for the topic's metadata; once the colliding topic is deleted, the broker creates the relay's
on the next metadata request. (Simpler outages do not hang: a principal that may not create a
missing topic is refused at once, and on a broker of one, min.insync.replicas is capped at 1.)"""

import asyncio
import contextlib
import json
from uuid import uuid4

import asyncpg
import structlog
from prometheus_client import REGISTRY

from kernel.eventstore import EventStore
from kernel.relay import OutboxRelay, new_producer
from tests.support.events import KernelPing
from tests.support.infra import ADMIN_URL, KAFKA_ADMIN, create_topics, delete_topics, read_topic

BOUND = 1.0  # each publish attempt, in seconds


class CountingRelay(OutboxRelay):
    attempts = 0

    async def publish_batch(self) -> int:
        self.attempts += 1
        return await super().publish_batch()


async def _longest_idle_in_transaction(schema: str, seconds: float) -> float:
    """The longest any session of the pool's application stayed `idle in transaction`, sampled
    every 0.1 s for `seconds` (as the administrator, who sees every session's state)."""
    admin = await asyncpg.connect(ADMIN_URL)
    longest = 0.0
    try:
        for _ in range(int(seconds / 0.1)):
            held = await admin.fetchval(
                "SELECT max(extract(epoch FROM now() - state_change)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND state = 'idle in transaction'",
                f"flexenroll-{schema}",
            )
            longest = max(longest, float(held or 0.0))
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return longest


def _backlog(store: EventStore) -> float | None:
    """The outbox backlog gauge an operator scrapes."""
    return REGISTRY.get_sample_value("flexenroll_outbox_backlog", {"service": store.producer})


async def test_an_unreachable_topic_holds_no_transaction_and_loses_nothing(
    pool: asyncpg.Pool, store: EventStore, schema: str
) -> None:
    tag = uuid4().hex[:10]
    topic, blocker = f"test.outage.{tag}.events", f"test_outage_{tag}_events"
    await create_topics([blocker], partitions=1)
    async with pool.acquire() as conn:
        stored = await store.append(conn, "s-1", 0, [KernelPing(n=n) for n in range(5)], correlation_id="c")
    producer = new_producer(KAFKA_ADMIN, client_id="relay-outage-test")
    await producer.start()
    relay = CountingRelay(
        pool, store, producer, topic, idle_poll_seconds=0.2, publish_timeout_seconds=BOUND, retry_max_seconds=0.5
    )
    try:
        with structlog.testing.capture_logs() as logs:
            running = asyncio.create_task(relay.run())
            longest = await _longest_idle_in_transaction(schema, seconds=5 * BOUND)
            assert relay.attempts >= 3 and relay.outage.since is not None  # several attempts, none through
            assert longest < BOUND, f"a transaction stayed idle for {longest:.1f} s during the outage"
            assert await pool.fetchval("SELECT count(*) FROM outbox") == 5  # the rows wait
            assert _backlog(store) == 5  # and the operator sees them

            await delete_topics([blocker])  # the broker can create the topic now
            for _ in range(300):
                if await pool.fetchval("SELECT count(*) FROM outbox") == 0:
                    break
                await asyncio.sleep(0.1)
            assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
            for _ in range(50):  # the gauge follows at the relay's next idle moment
                if _backlog(store) == 0:
                    break
                await asyncio.sleep(0.1)
            assert _backlog(store) == 0
        failing = [e for e in logs if e["event"] == "relay_publish_failing"]
        assert len(failing) == 1 and failing[0]["log_level"] == "warning"
        assert "TimeoutError" in failing[0]["error"]  # the sends hung: it is the bound that ended them
        assert [e for e in logs if e["event"] == "relay_publish_resumed"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await producer.stop()
    try:
        # Sends of timed-out attempts may still go out once the broker takes them (at least once:
        # consumers ignore what they have), never out of order.
        records = await read_topic(topic, expect=5, timeout=30)
        published = [json.loads(r.value) for r in records]  # type: ignore[attr-defined]
        assert {p["event_id"] for p in published} == {str(e.event_id) for e in stored}
        first_seen = list(dict.fromkeys(p["stream_version"] for p in published))
        assert first_seen == [1, 2, 3, 4, 5]
    finally:
        await delete_topics([topic, blocker])
