"""Kafka subscribers of enrollment, thin: they run in the consumer's batch transaction, decode
(upcasting older versions) and do their work on `conn` (the kernel records the event id in the
same transaction).

identity's personal fields arrive sealed under the person's key (docs/personal-data.md): they are
opened here, as part of decoding, through the service's `PersonKeys`; an erased person's open to
nothing, and nothing is stored. An unreachable identity is an infrastructure error: the batch is
retried later."""

from contracts.envelope import Envelope
from contracts.events.identity import (
    PersonErased,
    RegisteredPersonal,
    UserRegistered,
    UserVerified,
    VerifiedPersonal,
)
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from contracts.topics import IDENTITY_EVENTS, REVIEW_EVENTS
from contracts.upcasting import decode
from kernel.db import Connection
from kernel.logging import get_logger
from kernel.runtime import Subscription
from services.enrollment import projections
from services.enrollment.service import EnrollmentService
from services.enrollment.status import SUBSCRIBED_FACTS, SUBSCRIBED_TOPICS

log = get_logger(__name__)


class EnrollmentHandlers:
    def __init__(self, service: EnrollmentService) -> None:
        self.service = service

    # --- identity.events: enrollment's view of people ------------------------------------------

    async def on_user_registered(self, conn: Connection, envelope: Envelope) -> None:
        event = decode(envelope)
        assert isinstance(event, UserRegistered)
        opened = await self.service.keys.open(event.personal, owner=event.user_id)
        if opened is None:
            log.info("person_erased_nothing_stored", user_id=str(event.user_id), event_type=event.event_type)
            return
        await projections.record_registered(conn, event.user_id, RegisteredPersonal.model_validate(opened).phone)

    async def on_user_verified(self, conn: Connection, envelope: Envelope) -> None:
        event = decode(envelope)
        assert isinstance(event, UserVerified)
        opened = await self.service.keys.open(event.personal, owner=event.user_id)
        if opened is None:
            log.info("person_erased_nothing_stored", user_id=str(event.user_id), event_type=event.event_type)
            return
        fields = VerifiedPersonal.model_validate(opened)
        await projections.record_verified(conn, event, fields.name, fields.birth_date)

    async def on_person_erased(self, conn: Connection, envelope: Envelope) -> None:
        """The person's clear data leaves enrollment; their applications and status stay."""
        event = decode(envelope)
        assert isinstance(event, PersonErased)
        await projections.erase_person(conn, event.user_id, event.erased_at)
        self.service.keys.forget(event.user_id)

    # --- review.events: the application learns what the agency did -----------------------------

    async def on_review_case_opened(self, conn: Connection, envelope: Envelope) -> None:
        await self.service.learn_from_review(conn, envelope, decode(envelope))

    async def on_review_decided(self, conn: Connection, envelope: Envelope) -> None:
        await self.service.learn_from_review(conn, envelope, decode(envelope))

    # --- identity, payment and notify: facts of the status projection ---------------------------

    async def on_status_fact(self, conn: Connection, envelope: Envelope) -> None:
        """Another service's fact. enrollment's own events are not read back from its topic: the
        service layer records them in the transaction that appends them."""
        await projections.record_facts(conn, [envelope])

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(
                "people",
                [IDENTITY_EVENTS],
                {
                    UserRegistered.event_type: self.on_user_registered,
                    UserVerified.event_type: self.on_user_verified,
                    PersonErased.event_type: self.on_person_erased,
                },
            ),
            Subscription(
                "review",
                [REVIEW_EVENTS],
                {
                    ReviewCaseOpened.event_type: self.on_review_case_opened,
                    ReviewDecided.event_type: self.on_review_decided,
                },
            ),
            Subscription(
                "status", list(SUBSCRIBED_TOPICS), {cls.event_type: self.on_status_fact for cls in SUBSCRIBED_FACTS}
            ),
        ]
