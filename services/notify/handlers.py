"""notify's Kafka subscribers: thin, on the consumer's transaction, never calling a provider."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contracts.envelope import Envelope
from contracts.events.identity import UserRegistered
from contracts.events.review import ReviewDecided
from contracts.upcasting import decode
from kernel.consumer import Handler
from kernel.db import Connection
from services.notify import domain, projections, service
from services.notify.templates import Templates

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class NotifyHandlers:
    """`max_decision_age` is the replay guard's limit; `clock` gives `now` (tests set it)."""

    def __init__(
        self,
        templates: Templates,
        max_decision_age: timedelta = domain.DEFAULT_MAX_DECISION_AGE,
        clock: Clock = utc_now,
    ) -> None:
        self.templates = templates
        self.max_decision_age = max_decision_age
        self.clock = clock

    async def on_user_registered(self, conn: Connection, envelope: Envelope) -> None:
        registered = decode(envelope)
        assert isinstance(registered, UserRegistered)
        await projections.remember_recipient(
            conn, registered.user_id, registered.phone, self.clock(), self.max_decision_age
        )

    async def on_review_decided(self, conn: Connection, envelope: Envelope) -> None:
        """Record the SMS intent only; the sender texts after this transaction commits."""
        decided = decode(envelope)
        assert isinstance(decided, ReviewDecided)
        intent = domain.intent_for_decision(envelope.event_id, decided, self.templates)
        await service.record_intent(conn, intent, envelope.correlation_id, self.clock(), self.max_decision_age)

    def by_event_type(self) -> dict[str, Handler]:
        return {
            UserRegistered.event_type: self.on_user_registered,
            ReviewDecided.event_type: self.on_review_decided,
        }
