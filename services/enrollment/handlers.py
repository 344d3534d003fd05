"""Kafka subscribers of enrollment, thin: they run in the consumer's batch transaction and do
their work on `conn` (the kernel records the event id in the same transaction)."""

from collections.abc import Awaitable, Callable

from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import ApplicationApproved
from contracts.events.identity import UserRegistered, UserVerified
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from contracts.upcasting import decode
from kernel.consumer import Handler
from kernel.db import Connection
from kernel.eventstore import EventStore
from kernel.logging import get_logger
from services.enrollment import domain, projections
from services.enrollment.domain import Application
from services.enrollment.service import append, stream_id
from services.enrollment.status import FACT_TYPES

log = get_logger(__name__)


# --- identity.events: enrollment's view of people ---------------------------------------------


async def on_user_registered(conn: Connection, envelope: Envelope) -> None:
    event = decode(envelope)
    assert isinstance(event, UserRegistered)
    await projections.record_registered(conn, event)


async def on_user_verified(conn: Connection, envelope: Envelope) -> None:
    event = decode(envelope)
    assert isinstance(event, UserVerified)
    await projections.record_verified(conn, event)


IDENTITY_HANDLERS: dict[str, Handler] = {
    UserRegistered.event_type: on_user_registered,
    UserVerified.event_type: on_user_verified,
}


# --- review.events: the application learns what the agency did --------------------------------


def review_handlers(store: EventStore) -> dict[str, Handler]:
    async def react(conn: Connection, envelope: Envelope) -> None:
        event = decode(envelope)
        assert isinstance(event, ReviewCaseOpened | ReviewDecided)
        app = domain.replay(await store.load(conn, stream_id(event.application_id)))
        if app is None:  # not one of ours (e.g. another environment's history on the topic)
            log.info("review_fact_for_unknown_application", application_id=str(event.application_id))
            return
        outcome = _decide(app, event)
        if outcome is None:
            log.info("review_fact_ignored", attempt=event.attempt, current_attempt=app.attempt, status=app.status)
            return
        await append(conn, store, app, [outcome], envelope.correlation_id, causation_id=str(envelope.event_id))
        if isinstance(outcome, ApplicationApproved):  # closes the person's open application
            await conn.execute(
                "UPDATE applications SET approved_at = $2 WHERE application_id = $1",
                app.application_id,
                outcome.decided_at,
            )

    return {ReviewCaseOpened.event_type: react, ReviewDecided.event_type: react}


def _decide(app: Application, event: ReviewCaseOpened | ReviewDecided) -> Event | None:
    if isinstance(event, ReviewCaseOpened):
        return domain.on_case_opened(app, event)
    return domain.on_decided(app, event)


# --- every topic: facts of the status projection ----------------------------------------------


async def on_fact(conn: Connection, envelope: Envelope) -> None:
    await projections.record_facts(conn, [envelope])


STATUS_HANDLERS: dict[str, Callable[[Connection, Envelope], Awaitable[None]]] = {
    cls.event_type: on_fact for cls in FACT_TYPES
}
