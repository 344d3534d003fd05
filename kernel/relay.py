"""The outbox relay: publishes every committed event to the service's topic, at least once.

Guarantees (README: "Delivery guarantees"):
- nothing is lost between commit and publish: an outbox row is deleted only after the broker
  acknowledged its event (acks=all, idempotent producer); a relay that dies in between sends
  the same stored envelope again on restart, with the same event_id;
- nothing is skipped: the relay takes whatever outbox rows are visible, not "positions after
  the last one", so a transaction that took a lower position and committed later is found;
- order per stream: one relay at a time per service (advisory lock) publishes in position
  order, and a stream's versions are appended in position order.
"""

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from kernel.eventstore import EventStore
from kernel.kafka import KafkaAccess
from kernel.logging import get_logger
from kernel.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, RELAY_BATCH_SECONDS

log = get_logger(__name__)

_PENDING = """
SELECT e.position, e.event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version,
       e.occurred_at, e.correlation_id, e.causation_id, e.data
FROM outbox o JOIN events e USING (position)
ORDER BY o.position
LIMIT $1
FOR UPDATE OF o
"""


def new_producer(access: KafkaAccess, client_id: str) -> AIOKafkaProducer:
    """The idempotent producer of the relay and of dead letters, authenticated as `access`'s principal."""
    return AIOKafkaProducer(
        **access.options(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
    )


async def publish(producer: AIOKafkaProducer, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Send all, then wait for every acknowledgement: one round of batching on the wire."""
    futures = [
        await producer.send(topic, value=e.to_json(), key=e.stream_id.encode(), headers=e.kafka_headers())
        for e in envelopes
    ]
    await asyncio.gather(*futures)


async def requeue_all(pool: asyncpg.Pool) -> int:
    """Queue every stored event of the service for publishing again (same event ids: consumers
    ignore what they have), for an operator repairing a topic (`flexctl republish`). The running
    relay sends them. Returns how many were not queued already."""
    return int(
        await pool.fetchval(
            "WITH q AS (INSERT INTO outbox (position) SELECT position FROM events "
            "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM q"
        )
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: EventStore,
        producer: AIOKafkaProducer,
        topic: str,
        *,
        batch_max: int = 500,
        idle_poll_seconds: float = 1.0,
    ) -> None:
        self.pool = pool
        self.store = store
        self.producer = producer
        self.topic = topic
        self.batch_max = batch_max
        self.idle_poll_seconds = idle_poll_seconds
        self._wakeup = asyncio.Event()

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many events went out (0: outbox empty)."""
        with RELAY_BATCH_SECONDS.labels(self.store.producer).time():
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(_PENDING, self.batch_max)
                if not rows:
                    return 0
                envelopes = [self.store.envelope_from_row(r) for r in rows]
                await publish(self.producer, self.topic, envelopes)
                await conn.execute(
                    "DELETE FROM outbox WHERE position = ANY($1::bigint[])", [r["position"] for r in rows]
                )
        EVENTS_PUBLISHED.labels(self.store.producer).inc(len(rows))
        return len(rows)

    async def backlog(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM outbox"))

    async def drain(self) -> int:
        """Publish until the outbox is empty (tests, `flexctl`)."""
        total = 0
        while n := await self.publish_batch():
            total += n
        return total

    async def run(self) -> None:
        """Forever: hold leadership, publish on NOTIFY, poll as a fallback; survive outages."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: wait and take over again
                log.warning("relay_interrupted", error=repr(exc))
                await asyncio.sleep(2.0)

    async def _lead(self) -> None:
        async with self.pool.acquire() as leader:
            lock_key = f"{self.store.schema}.relay"
            while not await leader.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
                await asyncio.sleep(self.idle_poll_seconds)
            await leader.add_listener(self.store.outbox_channel, self._on_notify)
            try:
                log.info("relay_leading", topic=self.topic)
                await self._loop()
            finally:
                with contextlib.suppress(Exception):
                    await leader.remove_listener(self.store.outbox_channel, self._on_notify)
                    await leader.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            sent = await self.publish_batch()
            if sent >= self.batch_max:
                continue
            OUTBOX_BACKLOG.labels(self.store.producer).set(0 if sent else await self.backlog())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.idle_poll_seconds)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()
