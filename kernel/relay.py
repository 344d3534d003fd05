"""The outbox relay: publishes every committed event to the service's topic, at least once.

Guarantees (README: "Delivery guarantees"):
- nothing is lost between commit and publish: an outbox row is deleted only after the broker
  acknowledged its event (acks=all, idempotent producer); a relay that dies in between sends
  the same stored envelope again on restart, with the same event_id;
- nothing is skipped: the relay takes whatever outbox rows are visible, not "positions after
  the last one", so a transaction that took a lower position and committed later is found;
- order per stream: one relay at a time per service (advisory lock) publishes in position
  order, and a stream's versions are appended in position order. Any other publisher (an
  operator's `flexctl republish --drain`) also sends in position order and deletes only what the
  broker acknowledged, so the first copy of each event still comes in order.

No transaction stays open while the broker is waited for (issue 10: one stayed `idle in
transaction` for a whole broker outage, holding locks and blocking vacuum): a batch is read,
published within `publish_timeout_seconds`, then deleted, each statement on its own. A publish
that times out leaves its rows for a later attempt (at least once: consumers ignore what they
have); the relay backs off and logs one warning per outage, not one per attempt.

Reading ahead: while a full batch's acknowledgements are awaited, the next batch is read (every
visible row but the batch in flight) and encoded. It is sent only after the batch before it was
acknowledged and deleted, and thrown away if that one failed, so batches still go out one at a
time in order; rows committed meanwhile are found by the batch after, as without reading ahead.
"""

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.envelope import Envelope, KafkaMessage, kafka_message_from_row
from kernel.eventstore import EventStore
from kernel.kafka import KafkaAccess
from kernel.logging import get_logger
from kernel.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, RELAY_BATCH_SECONDS
from kernel.startup import Backoff

log = get_logger(__name__)

# The outbox's first rows, then their events one by one: a join of the whole tables (with the
# LIMIT on top) merge-joined `events` from its first position on every batch, so draining a long
# outbox cost quadratic time in PostgreSQL. $2: the batch in flight, while reading ahead. The id
# and `data` as text: the message needs them as text, and the jsonb codec's stdlib json is slower.
_PENDING = """
SELECT e.position, e.event_id::text AS event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version,
       e.occurred_at, e.correlation_id, e.causation_id, e.data::text AS data
FROM (SELECT position FROM outbox WHERE position <> ALL($2::bigint[]) ORDER BY position LIMIT $1) AS o
JOIN events e USING (position)
ORDER BY o.position
"""
# What says "the broker is away" while publishing: wait and try the same rows again.
PUBLISH_FAILURES: tuple[type[BaseException], ...] = (TimeoutError, KafkaError)


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
    """`send_all` of the envelopes' messages."""
    await send_all(producer, topic, [(e.to_json(), e.kafka_key(), e.kafka_headers()) for e in envelopes])


async def send_all(producer: AIOKafkaProducer, topic: str, messages: Sequence[KafkaMessage]) -> None:
    """Send all, then wait for every acknowledgement: one round of batching on the wire."""
    futures = [await producer.send(topic, value=v, key=k, headers=h) for v, k, h in messages]
    await asyncio.gather(*futures)


@dataclass(frozen=True)
class Batch:
    """Outbox rows read for publishing, in position order, and their messages."""

    positions: list[int]
    messages: list[KafkaMessage]


def _discard(task: "asyncio.Task[Batch]") -> None:
    """Cancel a read ahead that will not be used, without a 'never retrieved' error later."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


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


class Outage:
    """One warning when publishing starts failing and one line when it works again, whatever the
    number of attempts in between."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("relay_publish_failing", topic=self.topic, error=repr(exc)[:300])

    def recovered(self) -> None:
        if self.since is not None:
            log.info("relay_publish_resumed", topic=self.topic, after_seconds=round(time.monotonic() - self.since, 1))
            self.since = None


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
        publish_timeout_seconds: float = 10.0,
        retry_max_seconds: float = 10.0,
    ) -> None:
        self.pool = pool
        self.store = store
        self.producer = producer
        self.topic = topic
        self.batch_max = batch_max
        self.idle_poll_seconds = idle_poll_seconds
        self.publish_timeout_seconds = publish_timeout_seconds
        self.retry_max_seconds = retry_max_seconds
        self.outage = Outage(topic)
        self._wakeup = asyncio.Event()
        self._ahead: Batch | None = None  # the next batch, read while the last one was in flight

    async def publish_batch(self) -> int:
        """Publish one batch; returns how many events went out (0: outbox empty). Raises
        TimeoutError when the broker did not acknowledge within `publish_timeout_seconds`: the
        rows stay in the outbox."""
        with RELAY_BATCH_SECONDS.labels(self.store.producer).time():
            batch, self._ahead = self._ahead, None
            batch = batch or await self._read([])
            if not batch.positions:
                return 0
            # only behind a full batch: after a short one the outbox is drained and the relay waits
            ahead = asyncio.create_task(self._read(batch.positions)) if len(batch.positions) >= self.batch_max else None
            try:
                async with asyncio.timeout(self.publish_timeout_seconds):
                    await send_all(self.producer, self.topic, batch.messages)
                await self.pool.execute("DELETE FROM outbox WHERE position = ANY($1::bigint[])", batch.positions)
            except BaseException:
                if ahead:  # sent before this batch's retry, it could overtake it
                    _discard(ahead)
                raise
            self._ahead = await self._collect(ahead)
        EVENTS_PUBLISHED.labels(self.store.producer).inc(len(batch.positions))
        return len(batch.positions)

    async def _read(self, in_flight: list[int]) -> Batch:
        rows = await self.pool.fetch(_PENDING, self.batch_max, in_flight)
        producer = self.store.producer
        return Batch([r["position"] for r in rows], [kafka_message_from_row(r, producer) for r in rows])

    @staticmethod
    async def _collect(ahead: "asyncio.Task[Batch] | None") -> Batch | None:
        """The batch read ahead, if it was read: on an error the next batch reads afresh and
        meets the error itself, as it would have without reading ahead."""
        if ahead is None:
            return None
        try:
            batch = await ahead
        except Exception:
            return None
        return batch if batch.positions else None  # nothing was left then: read afresh next time

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
                self.outage.failed(exc)
                await asyncio.sleep(2.0)

    async def _lead(self) -> None:
        async with self.pool.acquire() as leader:
            lock_key = f"{self.store.schema}.relay"
            while not await leader.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
                await asyncio.sleep(self.idle_poll_seconds)
            await leader.add_listener(self.store.outbox_channel, self._on_notify)
            self._ahead = None  # read before another relay may have led: read afresh
            try:
                log.info("relay_leading", topic=self.topic)
                await self._loop()
            finally:
                with contextlib.suppress(Exception):
                    await leader.remove_listener(self.store.outbox_channel, self._on_notify)
                    await leader.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)

    async def _loop(self) -> None:
        backoff = Backoff(self.idle_poll_seconds, self.retry_max_seconds)
        while True:
            self._wakeup.clear()
            try:
                sent = await self.publish_batch()
            except PUBLISH_FAILURES as exc:  # the broker away: the rows wait, we back off
                self.outage.failed(exc)
                # What waits is what an operator on call looks at during the outage.
                with contextlib.suppress(Exception):
                    OUTBOX_BACKLOG.labels(self.store.producer).set(await self.backlog())
                await asyncio.sleep(backoff.take())
                continue
            self.outage.recovered()
            backoff = Backoff(self.idle_poll_seconds, self.retry_max_seconds)
            if sent >= self.batch_max:
                continue
            # Fewer than a batch: every visible row was sent, no count(*) needed to say so.
            OUTBOX_BACKLOG.labels(self.store.producer).set(0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_poll_seconds):
                    await self._wakeup.wait()

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()
