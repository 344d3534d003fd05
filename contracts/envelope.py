"""The one JSON envelope every message value carries (docs/downstream.md: "The envelope")."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID, uuid4

import pydantic_core
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

if TYPE_CHECKING:
    from contracts.events.base import Event


class Envelope(BaseModel):
    """Metadata around one event; `data` holds the event's own fields.

    The Kafka message key is `stream_id`; `event_type` and `correlation_id` are also sent as
    Kafka headers so that routers and dead-letter tools need not parse the value.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(description="Unique id of the event; consumers deduplicate on it.")
    event_type: str = Field(description="Name of the event, e.g. UserVerified.")
    schema_version: int = Field(ge=1, description="Version of the schema `data` follows.")
    stream_id: str = Field(description="Id of the aggregate the event belongs to; also the Kafka message key.")
    stream_version: int = Field(ge=1, description="1-based position of the event in its stream")
    occurred_at: AwareDatetime = Field(description="UTC, RFC 3339")
    producer: str = Field(description="name of the service that decided the event")
    correlation_id: str = Field(description="Id shared by every event of one business flow (e.g. one application).")
    causation_id: str | None = Field(default=None, description="event_id of the event that caused this one, if any.")
    data: dict[str, Any] = Field(description="The event's own fields, see its schema.")

    @field_serializer("occurred_at")
    def _utc_rfc3339(self, value: datetime) -> str:
        return utc_rfc3339(value)

    @classmethod
    def wrap(
        cls,
        event: "Event",
        *,
        stream_id: str,
        stream_version: int,
        producer: str,
        correlation_id: str,
        causation_id: str | None = None,
        event_id: UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> "Envelope":
        """Put an event in an envelope (a new event_id and the current time unless given)."""
        return cls(
            event_id=uuid4() if event_id is None else event_id,
            event_type=event.event_type,
            schema_version=event.schema_version,
            stream_id=stream_id,
            stream_version=stream_version,
            occurred_at=datetime.now(UTC) if occurred_at is None else occurred_at,
            producer=producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            data=event.payload(),
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Envelope":
        return cls.model_validate_json(raw)

    def kafka_key(self) -> bytes:
        return self.stream_id.encode()

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [
            ("event_type", self.event_type.encode()),
            ("correlation_id", self.correlation_id.encode()),
        ]


# A Kafka message as the producer takes it: value, key, headers.
KafkaMessage = tuple[bytes, bytes, list[tuple[str, bytes]]]


class StoredRow(Protocol):
    """A row of the event store's `events` table (an asyncpg Record), columns by name."""

    def __getitem__(self, column: str) -> Any: ...


def utc_rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def kafka_message_from_row(row: StoredRow, producer: str) -> KafkaMessage:
    """The bytes `Envelope(...)`'s `to_json`, `kafka_key` and `kafka_headers` give for a stored
    row, without validating it again (the store validated it on append): the relay sends every
    stored event through here. The same fields in the same order through pydantic's own
    serializer, so the value is byte-identical (tests/unit/test_envelope_bytes.py). `data` may
    be the jsonb column's text (`data::text`): parsed here, faster than the stdlib's json."""
    data = row["data"]
    value = pydantic_core.to_json(
        {
            "event_id": str(row["event_id"]),
            "event_type": row["event_type"],
            "schema_version": row["schema_version"],
            "stream_id": row["stream_id"],
            "stream_version": row["stream_version"],
            "occurred_at": utc_rfc3339(row["occurred_at"]),
            "producer": producer,
            "correlation_id": row["correlation_id"],
            "causation_id": row["causation_id"],
            "data": pydantic_core.from_json(data) if isinstance(data, str) else data,
        },
        inf_nan_mode="null",  # the model's default (`ser_json_inf_nan`)
    )
    headers = [("event_type", row["event_type"].encode()), ("correlation_id", row["correlation_id"].encode())]
    return value, row["stream_id"].encode(), headers
