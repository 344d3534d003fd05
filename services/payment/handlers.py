"""payment's Kafka subscribers: thin, on the consumer's transaction.

enrollment.events, one key per application, so a submission and its approval arrive in order;
still, a redelivered or replayed history changes nothing (the service layer notes each attempt
once and opens each person's account once). Tiers travel in clear: payment opens no sealed data.
"""

from contracts.envelope import Envelope
from contracts.events.enrollment import ApplicationApproved, EnrollmentSubmitted
from contracts.topics import ENROLLMENT_EVENTS
from contracts.upcasting import decode
from kernel.consumer import Handler
from kernel.db import Connection
from kernel.runtime import Subscription
from kernel.unit_of_work import PostgresUnitOfWork
from services.payment.service import PaymentService


class PaymentHandlers:
    def __init__(self, service: PaymentService) -> None:
        self.service = service

    def _on(self, conn: Connection) -> PostgresUnitOfWork:
        """A unit of work inside the consumer's transaction (a savepoint of it)."""
        return PostgresUnitOfWork(self.service.store, conn=conn)

    async def on_enrollment_submitted(self, conn: Connection, envelope: Envelope) -> None:
        submitted = decode(envelope)  # upcasts older schema versions
        assert isinstance(submitted, EnrollmentSubmitted)
        await self.service.note_submission(submitted, envelope, units=lambda: self._on(conn))

    async def on_application_approved(self, conn: Connection, envelope: Envelope) -> None:
        approved = decode(envelope)
        assert isinstance(approved, ApplicationApproved)
        await self.service.open_account(approved, envelope, units=lambda: self._on(conn))

    def subscriptions(self) -> list[Subscription]:
        """Every topic payment reads, in one place."""
        accounts: dict[str, Handler] = {
            EnrollmentSubmitted.event_type: self.on_enrollment_submitted,
            ApplicationApproved.event_type: self.on_application_approved,
        }
        return [Subscription("accounts", [ENROLLMENT_EVENTS], accounts)]
