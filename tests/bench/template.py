"""Many realistic applications' events, fast: one Journey (tests/support/journey.py) as byte
templates whose ids vary by copy, and a raw confluent-kafka producer to put them on topics.

Every UUID in a journey's keys, values and headers keeps its first 24 hex digits and takes the
copy's number as its last 12, so copy n is the same journey with ids of its own (event ids,
application, applicant, case, ...) at the cost of a `bytes.join` per field: a million events are
made and produced in seconds, not minutes of pydantic.
"""

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from contracts.envelope import Envelope
from contracts.events import topic_of
from kernel.kafka import KafkaAccess
from tests.support.journey import journey

_TAIL = re.compile(rb"(?<=[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)[0-9a-f]{12}")

Header = tuple[str, str | bytes | None]  # confluent-kafka's type, which aiokafka's fits too
Record = tuple[str, bytes, bytes, list[Header]]  # topic, key, value, headers


@dataclass(frozen=True)
class _Split:
    topic: str
    key: list[bytes]
    value: list[bytes]
    headers: list[tuple[str, list[bytes]]]


class JourneyTemplate:
    """The events of one `journey()` that go to `topics` (all of them when None)."""

    def __init__(self, topics: Sequence[str] | None = None, topic_prefix: str = "") -> None:
        self.messages = [
            _Split(
                topic_prefix + topic_of(e.event_type),
                _TAIL.split(e.kafka_key()),
                _TAIL.split(e.to_json()),
                [(k, _TAIL.split(v)) for k, v in e.kafka_headers()],
            )
            for e in journey().envelopes
            if topics is None or topic_of(e.event_type) in topics
        ]

    def __len__(self) -> int:
        return len(self.messages)

    def copy(self, n: int) -> Iterator[Record]:
        tail = b"%012x" % n
        for m in self.messages:
            headers: list[Header] = [(k, tail.join(v)) for k, v in m.headers]
            yield m.topic, tail.join(m.key), tail.join(m.value), headers

    def records(self, first_copy: int, count: int) -> Iterator[Record]:
        """`count` records from copy `first_copy` on (the last copy may be cut short)."""
        n = first_copy
        while count > 0:
            for record in self.copy(n):
                if count == 0:
                    return
                yield record
                count -= 1
            n += 1

    def envelopes(self, first_copy: int, count: int) -> list[Envelope]:
        return [Envelope.from_json(value) for _, _, value, _ in self.records(first_copy, count)]


def produce(access: KafkaAccess, records: Iterator[Record]) -> int:
    """Send `records` with big batches and acks from the leader only (a fill, not a measurement);
    returns how many went out, after asserting that none failed."""
    producer = Producer(
        {
            **access.librdkafka(),
            "acks": 1,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 200_000,
            "queue.buffering.max.kbytes": 512 * 1024,
        }
    )
    failed: list[KafkaError] = []
    on_delivery = _collect_errors(failed)
    sent = 0
    for topic, key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        sent += 1
    left = producer.flush(60)
    assert left == 0 and not failed, (left, failed[:3])
    return sent


def _collect_errors(failed: list[KafkaError]) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failed.append(error)

    return on_delivery
