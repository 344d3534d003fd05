"""review's Kafka subscribers: thin, on the consumer's transaction.

The applicant's name, birth date and phone arrive sealed under the applicant's key
(docs/personal-data.md): they are opened here, as part of decoding, through
`kernel.personal.PersonKeys`; an erased person's open to nothing."""

from contracts.envelope import Envelope
from contracts.events.enrollment import EnrollmentSubmitted
from contracts.events.identity import PersonErased
from contracts.topics import ENROLLMENT_EVENTS, IDENTITY_EVENTS
from contracts.upcasting import decode
from kernel.clock import utc_now
from kernel.consumer import Handler
from kernel.db import Connection
from kernel.personal import PersonKeys
from kernel.runtime import Subscription
from services.review import domain
from services.review.service import ReviewService


class ReviewHandlers:
    def __init__(self, service: ReviewService, keys: PersonKeys) -> None:
        self.service = service
        self.keys = keys

    async def on_enrollment_submitted(self, conn: Connection, envelope: Envelope) -> None:
        submitted = decode(envelope)  # upcasts older schema versions
        assert isinstance(submitted, EnrollmentSubmitted)
        # identity unreachable: the batch is retried; sealed for someone else: the message is poison
        opened = await self.keys.open(submitted.personal, owner=submitted.applicant_id)
        applicant = domain.applicant_data(opened)
        await self.service.open_case(conn, submitted, applicant, envelope, utc_now())

    async def on_person_erased(self, conn: Connection, envelope: Envelope) -> None:
        erased = decode(envelope)
        assert isinstance(erased, PersonErased)
        await self.service.erase_applicant(conn, erased.user_id, erased.erased_at)
        self.keys.forget(erased.user_id)

    def subscriptions(self) -> list[Subscription]:
        """Every topic review reads, in one place."""
        cases: dict[str, Handler] = {EnrollmentSubmitted.event_type: self.on_enrollment_submitted}
        people: dict[str, Handler] = {PersonErased.event_type: self.on_person_erased}
        return [Subscription("cases", [ENROLLMENT_EVENTS], cases), Subscription("people", [IDENTITY_EVENTS], people)]
