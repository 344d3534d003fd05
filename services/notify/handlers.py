"""notify's Kafka subscribers: thin, on the consumer's transaction, never calling a provider."""

from contracts.envelope import Envelope
from contracts.events.identity import UserRegistered
from contracts.events.review import ReviewDecided
from contracts.topics import IDENTITY_EVENTS, REVIEW_EVENTS
from contracts.upcasting import decode
from kernel.consumer import Handler
from kernel.db import Connection
from kernel.runtime import Subscription
from services.notify.service import NotifyService


class NotifyHandlers:
    def __init__(self, service: NotifyService) -> None:
        self.service = service

    async def on_user_registered(self, conn: Connection, envelope: Envelope) -> None:
        registered = decode(envelope)
        assert isinstance(registered, UserRegistered)
        await self.service.remember_recipient(conn, registered.user_id, registered.phone)

    async def on_review_decided(self, conn: Connection, envelope: Envelope) -> None:
        """Record the SMS intent only; the sender texts after this transaction commits."""
        decided = decode(envelope)
        assert isinstance(decided, ReviewDecided)
        await self.service.text_decision(conn, envelope.event_id, decided, envelope.correlation_id)

    def subscriptions(self) -> list[Subscription]:
        # One group for both topics: recipients and decisions arrive in whatever order.
        handlers: dict[str, Handler] = {
            UserRegistered.event_type: self.on_user_registered,
            ReviewDecided.event_type: self.on_review_decided,
        }
        return [Subscription("sms", [IDENTITY_EVENTS, REVIEW_EVENTS], handlers)]
