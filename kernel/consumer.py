"""Idempotent, batching Kafka consumer for FastStream subscribers (README: "Delivery guarantees").

For each batch: one database transaction records every new event_id of the batch in
`processed_events` and runs the handlers' effects; Kafka offsets are committed only after that
transaction (FastStream AckPolicy.NACK_ON_ERROR: ack after success, seek back on failure).
A redelivered message finds its event_id recorded and changes nothing.

A message that cannot be decoded, or whose handler keeps failing after bounded retries, is a
poison message: it goes to `<service>.dlq` with the error and its original coordinates in
headers, is recorded as dead-lettered, and the consumer goes on. Infrastructure failures
(database or broker away) are not poison: the batch is retried later instead.

Trust (docs/downstream.md: "Credentials"): only the owner of an events topic may publish on it
(`review.events` is review's), which the broker's ACLs enforce and the consumer checks again: an
envelope whose `producer` is not the topic's owner goes to `<service>.dlq` without any effect
(reason `producer_not_topic_owner`), and its event_id is not recorded, so that a forged copy
cannot shadow the genuine event.
"""

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from pydantic import ValidationError

from contracts.access import owner_of
from contracts.envelope import Envelope
from kernel.db import Connection
from kernel.logging import get_logger
from kernel.metrics import DEAD_LETTERS, MESSAGES_HANDLED

log = get_logger(__name__)

Handler = Callable[[Connection, Envelope], Awaitable[None]]

# Errors that say "try the whole batch again later", never "this message is poison".
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    KafkaError,  # the dead-letter topic itself unreachable: nothing is lost, the batch comes back
)


class ForeignProducer(ValueError):
    """An envelope on an events topic whose `producer` is not the topic's owner."""


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass
class IdempotentConsumer:
    """One consumer group: which event types it handles and what each does.

    `name` is the Kafka consumer group and the key under which handled event_ids are kept.
    `topic_prefix` (settings' TOPIC_PREFIX) is how physical topics map to contract topics and
    hence to their owners.
    """

    name: str
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    dlq_topic: str
    handlers: Mapping[str, Handler]
    max_attempts: int = 3
    retry_backoff_seconds: float = 0.05
    infra_backoff_seconds: float = 1.0
    topic_prefix: str = ""

    async def handle_batch(self, records: Sequence[Record]) -> None:
        wanted: list[tuple[Record, Envelope]] = []
        seen: set[Any] = set()
        for record in records:
            envelope = await self._decode(record)
            if envelope is not None and (foreign := self._foreign_producer(record, envelope)):
                await self._dead_letter(record, foreign, reason="producer_not_topic_owner")
                continue
            if envelope is None or envelope.event_type not in self.handlers or envelope.event_id in seen:
                continue
            seen.add(envelope.event_id)
            wanted.append((record, envelope))
        if not wanted:
            return
        try:
            await self._apply(wanted)
        except INFRASTRUCTURE_ERRORS as exc:
            log.warning("consumer_batch_retry", consumer=self.name, error=repr(exc), size=len(wanted))
            await asyncio.sleep(self.infra_backoff_seconds)
            raise

    async def _apply(self, wanted: list[tuple[Record, Envelope]]) -> None:
        # Fast path: the whole batch in one transaction, without a savepoint (a savepoint costs
        # two round trips; per message they dominated batch cost in `make bench`, and even one per
        # batch was a third of a light-load batch's round trips, issue 10). A handler failing
        # rolls the whole transaction back, event ids included, and the slow path starts over.
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                todo = await self._fresh(conn, wanted)
                for _, envelope in todo:
                    await self.handlers[envelope.event_type](conn, envelope)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            log.warning("batch_failed_retrying_one_by_one", consumer=self.name, error=repr(exc))
        else:
            self._count(wanted, todo)
            return
        # Slow path: find the poison, keep the rest (a savepoint per message).
        async with self.pool.acquire() as conn, conn.transaction():
            todo = await self._fresh(conn, wanted)
            for record, envelope in todo:
                await self._handle_one(conn, record, envelope)
        MESSAGES_HANDLED.labels(self.name, "duplicate").inc(len(wanted) - len(todo))

    async def _fresh(self, conn: Connection, wanted: list[tuple[Record, Envelope]]) -> list[tuple[Record, Envelope]]:
        """Record the batch's event ids; what was not recorded before is to be handled."""
        fresh = {
            r["event_id"]
            for r in await conn.fetch(
                "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
                "ON CONFLICT DO NOTHING RETURNING event_id",
                self.name,
                [e.event_id for _, e in wanted],
            )
        }
        return [(r, e) for r, e in wanted if e.event_id in fresh]

    def _count(self, wanted: list[tuple[Record, Envelope]], handled: list[tuple[Record, Envelope]]) -> None:
        MESSAGES_HANDLED.labels(self.name, "duplicate").inc(len(wanted) - len(handled))
        if handled:
            MESSAGES_HANDLED.labels(self.name, "handled").inc(len(handled))

    async def _handle_one(self, conn: Connection, record: Record, envelope: Envelope) -> None:
        handler = self.handlers[envelope.event_type]
        error: BaseException | None = None
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.event_id), correlation_id=envelope.correlation_id, consumer=self.name
        ):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    async with conn.transaction():  # a savepoint: a failed try leaves no trace
                        await handler(conn, envelope)
                    MESSAGES_HANDLED.labels(self.name, "handled").inc()
                    return
                except INFRASTRUCTURE_ERRORS:
                    raise
                except Exception as exc:
                    error = exc
                    log.warning("handler_failed", attempt=attempt, error=repr(exc))
                    await asyncio.sleep(self.retry_backoff_seconds * attempt)
            assert error is not None
            await self._dead_letter(record, error)
            await conn.execute(
                "UPDATE processed_events SET outcome = 'dead_lettered', error = $3 "
                "WHERE consumer = $1 AND event_id = $2",
                self.name,
                envelope.event_id,
                repr(error)[:2000],
            )

    def _foreign_producer(self, record: Record, envelope: Envelope) -> ForeignProducer | None:
        """The refusal if the envelope claims another producer than its topic's owner."""
        owner = owner_of(record.topic.removeprefix(self.topic_prefix))
        if owner is None or envelope.producer == owner:
            return None
        return ForeignProducer(f"producer {envelope.producer!r} on {record.topic}, which only {owner} publishes on")

    async def _decode(self, record: Record) -> Envelope | None:
        try:
            if record.value is None:
                raise ValueError("message has no value")
            return Envelope.from_json(record.value)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(record, exc, reason="undecodable")
            return None

    async def _dead_letter(self, record: Record, error: BaseException, reason: str = "handler_failed") -> None:
        headers = [
            *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")],
            ("dlq.consumer", self.name.encode()),
            ("dlq.reason", reason.encode()),
            ("dlq.error", repr(error)[:1000].encode()),
            ("dlq.traceback", "".join(traceback.format_exception(error))[-4000:].encode()),
            ("dlq.original_topic", record.topic.encode()),
            ("dlq.original_partition", str(record.partition).encode()),
            ("dlq.original_offset", str(record.offset).encode()),
        ]
        await self.producer.send_and_wait(self.dlq_topic, value=record.value, key=record.key, headers=headers)
        DEAD_LETTERS.labels(self.name).inc()
        MESSAGES_HANDLED.labels(self.name, "dead_lettered").inc()
        log.error(
            "message_dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=repr(error),
            reason=reason,
        )


def subscribe(
    broker: KafkaBroker,
    consumer: IdempotentConsumer,
    topics: Sequence[str],
    *,
    batch_max: int = 200,
    batch_wait_ms: int = 20,
) -> None:
    """Register the consumer on a FastStream broker as a batch subscriber with manual-safe acks."""

    @broker.subscriber(
        *topics,
        group_id=consumer.name,
        batch=True,
        max_records=batch_max,
        batch_timeout_ms=batch_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=consumer.name,
        decoder=_raw_records,
    )
    async def on_batch(records: Any) -> None:
        # The batch arrives as the message body, not as a `KafkaMessage` parameter: FastStream
        # resolves such a context parameter in a worker thread on every batch (about 7% of
        # review's CPU, issue 10); a body needs no thread.
        await consumer.handle_batch(records)


async def _raw_records(message: StreamMessage[Any]) -> tuple[Record, ...]:
    """The "decoder" of a batch: aiokafka's records as they came, each decoded by the consumer
    itself (FastStream's default would parse every value as JSON once more, for nothing)."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)


async def forget_dead_letters(pool: asyncpg.Pool, consumer: str, event_ids: Sequence[Any]) -> int:
    """Clear a consumer's record that it dead-lettered these events, so that when an operator sends
    them back to their topic (`flexctl dlq retry`) that consumer handles them again. Handled events
    stay recorded: a retry never makes a consumer do twice what it did. Returns how many were cleared."""
    status = await pool.execute(
        "DELETE FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[]) AND outcome = 'dead_lettered'",
        consumer,
        list(event_ids),
    )
    return int(status.split()[-1])
