"""The one JSON envelope every message value carries (design §3)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer


class Envelope(BaseModel):
    """Metadata around one event; `data` holds the event's own fields."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID
    event_type: str
    schema_version: int = Field(ge=1)
    stream_id: str
    stream_version: int = Field(ge=1, description="1-based position of the event in its stream")
    occurred_at: AwareDatetime = Field(description="UTC, RFC 3339")
    producer: str = Field(description="name of the service that decided the event")
    correlation_id: str
    causation_id: str | None = None
    data: dict[str, Any]

    @field_serializer("occurred_at")
    def _utc_rfc3339(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Envelope":
        return cls.model_validate_json(raw)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [
            ("event_type", self.event_type.encode()),
            ("correlation_id", self.correlation_id.encode()),
        ]
