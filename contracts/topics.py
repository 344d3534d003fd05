"""Topic names (docs/downstream.md: "Topics"): one event topic per service, one dead-letter topic per consumer."""

from typing import Final

SERVICES: Final = ("identity", "enrollment", "review", "payment", "notify")

IDENTITY_EVENTS: Final = "identity.events"
ENROLLMENT_EVENTS: Final = "enrollment.events"
REVIEW_EVENTS: Final = "review.events"
PAYMENT_EVENTS: Final = "payment.events"
NOTIFY_EVENTS: Final = "notify.events"

EVENT_TOPICS: Final = tuple(f"{service}.events" for service in SERVICES)
DLQ_TOPICS: Final = tuple(f"{service}.dlq" for service in SERVICES)


def events_topic(service: str) -> str:
    return f"{service}.events"


def dlq_topic(service: str) -> str:
    return f"{service}.dlq"
