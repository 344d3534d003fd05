"""A complete downstream subscriber, for teams that read flexenroll's topics.

It counts approved enrolments and settled contributions per district for a statistics team:
- its own consumer group, reading from the beginning the first time (topics keep data forever);
- offsets committed only after the effect is stored (FastStream AckPolicy.ACK: after the handler);
- idempotent by `event_id` (delivery is at least once: the same event may come twice);
- events decoded through `contracts.upcasting.decode`, so older schema versions keep working;
- event types it does not know are skipped, never an error: new events appear over time;
- it needs no personal data: the sealed `personal` fields (docs/personal-data.md) are opaque to it,
  and it keeps nothing about a person that a `PersonErased` would oblige it to delete.

Run it: `KAFKA_PASSWORD=... python -m contracts.example_subscriber --group subscriber.stats --state stats.json`
(KAFKA_BOOTSTRAP, default 127.0.0.1:19092; TOPIC_PREFIX if the topics live under a prefix).
The broker authenticates every client (SASL/SCRAM-SHA-512, docs/downstream.md "Credentials"):
KAFKA_USERNAME is the principal an operator created for the team (default `subscriber`, the
read-only principal of this example), KAFKA_PASSWORD its password; on the local broker of
`make up` that is `local-kafka-subscriber-not-a-secret`. The principal may read every events
topic and use consumer groups starting with its name and a dot.
A real team would keep the state and the seen event ids in its own database, in one
transaction, exactly like `seen` and `counts` are saved together here.
"""

import argparse
import asyncio
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLScram512

from contracts.envelope import Envelope
from contracts.events.enrollment import EnrollmentSubmitted
from contracts.events.payment import PaymentSettled
from contracts.events.review import ReviewDecided
from contracts.topics import ENROLLMENT_EVENTS, PAYMENT_EVENTS, REVIEW_EVENTS
from contracts.upcasting import UnknownEventError, decode


class DistrictStats:
    """The subscriber's own state: what it has seen and the facts it keeps, saved together.

    Topics interleave differently on every read (a ReviewDecided may come before the
    EnrollmentSubmitted it refers to), so it keeps facts and derives the counts from them,
    rather than counting as events arrive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.seen: set[str] = set(saved.get("seen", []))
        self.district_of: dict[str, str] = saved.get("district_of", {})
        self.approved_applications: set[str] = set(saved.get("approved_applications", []))
        self.payments: dict[str, list[Any]] = saved.get("payments", {})  # payment id -> [person, fen]

    def apply(self, envelope: Envelope) -> bool:
        """Apply one event; False if it was seen before or is of no interest."""
        if str(envelope.event_id) in self.seen:
            return False
        try:
            event = decode(envelope)
        except UnknownEventError:  # an event type or version this subscriber does not know yet
            return False
        self.seen.add(str(envelope.event_id))
        if isinstance(event, EnrollmentSubmitted):
            self.district_of[str(event.application_id)] = event.residence_district_code
            self.district_of[str(event.applicant_id)] = event.residence_district_code
        elif isinstance(event, ReviewDecided) and event.decision == "approved":
            self.approved_applications.add(str(event.application_id))
        elif isinstance(event, PaymentSettled):
            self.payments[str(event.payment_id)] = [str(event.insured_person_id), event.amount_fen]
        return True

    @property
    def approved(self) -> Counter[str]:
        return Counter(self.district_of.get(a, "unknown") for a in self.approved_applications)

    @property
    def paid_fen(self) -> Counter[str]:
        paid: Counter[str] = Counter()
        for person, fen in self.payments.values():
            paid[self.district_of.get(person, "unknown")] += fen
        return paid

    def save(self) -> None:
        state = {
            "seen": sorted(self.seen),
            "district_of": self.district_of,
            "approved_applications": sorted(self.approved_applications),
            "payments": self.payments,
            "approved": dict(self.approved),  # derived, for people reading the file
            "paid_fen": dict(self.paid_fen),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1))
        tmp.replace(self.path)  # atomic: the facts and the seen ids change together


def build(
    bootstrap: str, security: BaseSecurity, group: str, state_path: Path, topic_prefix: str = ""
) -> tuple[FastStream, DistrictStats]:
    broker = KafkaBroker(bootstrap, security=security)
    stats = DistrictStats(state_path)
    topics = [topic_prefix + t for t in (ENROLLMENT_EVENTS, REVIEW_EVENTS, PAYMENT_EVENTS)]

    @broker.subscriber(
        *topics,
        group_id=group,
        auto_offset_reset="earliest",  # a new group starts from the first event ever published
        batch=True,
        max_records=500,
        ack_policy=AckPolicy.ACK,  # commit offsets after the batch is stored, not before
    )
    async def on_events(envelopes: list[Envelope]) -> None:  # FastStream validates the JSON
        changed = False
        for envelope in envelopes:
            changed |= stats.apply(envelope)
        if changed:
            stats.save()

    return FastStream(broker), stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--group", required=True, help="your team's own consumer group: <principal>.<name>")
    parser.add_argument("--state", type=Path, default=Path("district-stats.json"))
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    password = os.environ.get("KAFKA_PASSWORD")
    if not password:
        parser.error("set KAFKA_PASSWORD to your principal's password (see this module's docstring)")
    security = SASLScram512(os.environ.get("KAFKA_USERNAME", "subscriber"), password)
    app, _ = build(bootstrap, security, args.group, args.state, os.environ.get("TOPIC_PREFIX", ""))
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
