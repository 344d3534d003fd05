"""review's Kafka subscribers: thin, on the consumer's transaction."""

from datetime import UTC, datetime

from contracts.envelope import Envelope
from contracts.events.enrollment import EnrollmentSubmitted
from contracts.upcasting import decode
from kernel.consumer import Handler
from kernel.db import Connection
from services.review.service import CaseIntake


def enrollment_handlers(intake: CaseIntake) -> dict[str, Handler]:
    async def on_enrollment_submitted(conn: Connection, envelope: Envelope) -> None:
        submitted = decode(envelope)  # upcasts older schema versions
        assert isinstance(submitted, EnrollmentSubmitted)
        await intake.open_case(conn, submitted, envelope, datetime.now(UTC))

    return {EnrollmentSubmitted.event_type: on_enrollment_submitted}
