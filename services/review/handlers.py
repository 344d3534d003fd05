"""review's Kafka subscribers: thin, on the consumer's transaction."""

from contracts.envelope import Envelope
from contracts.events.enrollment import EnrollmentSubmitted
from contracts.topics import ENROLLMENT_EVENTS
from contracts.upcasting import decode
from kernel.clock import utc_now
from kernel.consumer import Handler
from kernel.db import Connection
from kernel.runtime import Subscription
from services.review.service import ReviewService


class ReviewHandlers:
    def __init__(self, service: ReviewService) -> None:
        self.service = service

    async def on_enrollment_submitted(self, conn: Connection, envelope: Envelope) -> None:
        submitted = decode(envelope)  # upcasts older schema versions
        assert isinstance(submitted, EnrollmentSubmitted)
        await self.service.open_case(conn, submitted, envelope, utc_now())

    def subscriptions(self) -> list[Subscription]:
        handlers: dict[str, Handler] = {EnrollmentSubmitted.event_type: self.on_enrollment_submitted}
        return [Subscription("cases", [ENROLLMENT_EVENTS], handlers)]
