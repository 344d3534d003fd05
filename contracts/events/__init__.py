"""Every event of flexenroll, grouped by the service (and so the topic) that publishes it.

Importing this package registers all event classes, so `event_class()` knows every name.
"""

from typing import Final

from contracts import topics
from contracts.events import enrollment, identity, notify, payment, review
from contracts.events.base import Event, event_class, latest_version, registered_events

EVENTS_BY_TOPIC: Final[dict[str, tuple[type[Event], ...]]] = {
    topics.IDENTITY_EVENTS: identity.EVENTS,
    topics.ENROLLMENT_EVENTS: enrollment.EVENTS,
    topics.REVIEW_EVENTS: review.EVENTS,
    topics.PAYMENT_EVENTS: payment.EVENTS,
    topics.NOTIFY_EVENTS: notify.EVENTS,
}
"""Which events appear on which topic (a service publishes only on its own topic)."""

ALL_EVENTS: Final[tuple[type[Event], ...]] = tuple(cls for events in EVENTS_BY_TOPIC.values() for cls in events)
"""Every current event class, in topic order, then in the order of the flow."""

PUBLIC_EVENTS: Final[tuple[type[Event], ...]] = tuple(cls for cls in ALL_EVENTS if cls.public)

_TOPIC_OF: Final[dict[str, str]] = {
    cls.event_type: topic for topic, events in EVENTS_BY_TOPIC.items() for cls in events
}


def topic_of(event: type[Event] | str) -> str:
    """The topic an event (class or event_type) is published on."""
    return _TOPIC_OF[event if isinstance(event, str) else event.event_type]


__all__ = [
    "ALL_EVENTS",
    "EVENTS_BY_TOPIC",
    "PUBLIC_EVENTS",
    "Event",
    "event_class",
    "latest_version",
    "registered_events",
    "topic_of",
]
