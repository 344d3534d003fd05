"""Who reads which topic, defined once (docs/downstream.md: "Credentials").

Each service writes only its own `<service>.events` (and its `<service>.dlq`), so the owner of an
events topic is the service it is named after, and an envelope on it must name that service as
its `producer`. Which events topics a service reads is `SUBSCRIBES`: each service's Kafka
subscriptions are checked against it when the service starts (kernel.runtime), and the broker's
ACLs are derived from it (ops/broker_access.py), so a service cannot read what is not listed here.
"""

from collections.abc import Mapping
from typing import Final

from contracts.topics import (
    ENROLLMENT_EVENTS,
    EVENT_TOPICS,
    IDENTITY_EVENTS,
    NOTIFY_EVENTS,
    PAYMENT_EVENTS,
    REVIEW_EVENTS,
    SERVICES,
)

SUBSCRIBES: Final[Mapping[str, tuple[str, ...]]] = {
    "identity": (),
    # people (identity), review cases and decisions (review), and the status facts: verification,
    # contribution account and payments (payment), text messages (notify).
    "enrollment": (IDENTITY_EVENTS, REVIEW_EVENTS, PAYMENT_EVENTS, NOTIFY_EVENTS),
    # submissions (enrollment), and erasures (identity's PersonErased) to blank the applicant's data.
    "review": (IDENTITY_EVENTS, ENROLLMENT_EVENTS),
    # submissions (their tiers) and approvals (enrollment), which open contribution accounts. It
    # keeps no personal data (ids, tiers and amounts only), so it needs no PersonErased.
    "payment": (ENROLLMENT_EVENTS,),
    # recipients (identity), decisions to tell them about (review), and settlements to send a
    # receipt for, with their bills' months (payment).
    "notify": (IDENTITY_EVENTS, REVIEW_EVENTS, PAYMENT_EVENTS),
}

# The principal of downstream readers such as contracts/example_subscriber.py: read-only, every
# events topic, consumer groups named "subscriber.<...>". A real downstream team gets a principal
# of its own from an operator, with the same rights.
SUBSCRIBER: Final = "subscriber"
SUBSCRIBER_GROUP_PREFIX: Final = "subscriber."

_OWNERS: Final = {f"{service}.events": service for service in SERVICES}
assert set(_OWNERS) == set(EVENT_TOPICS) and set(SUBSCRIBES) == set(SERVICES)


def owner_of(topic: str) -> str | None:
    """The service that alone may publish on a contract events topic (`review.events` → review);
    None for a topic that is no events topic."""
    return _OWNERS.get(topic)


def may_subscribe(service: str, topic: str) -> bool:
    return topic in SUBSCRIBES.get(service, ())
