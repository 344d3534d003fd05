"""The downstream example subscriber (contracts/example_subscriber.py) on the real broker:
counts once per event, through redelivery, skips event types it does not know, and reads the
history of both versions of EnrollmentSubmitted (v1 in clear, v2 sealed) without any key."""

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from contracts.access import SUBSCRIBER, SUBSCRIBER_GROUP_PREFIX
from contracts.envelope import Envelope
from contracts.events.base import Event
from contracts.events.enrollment import EnrollmentSubmitted, EnrollmentSubmittedV1
from contracts.events.review import ReviewDecided
from contracts.example_subscriber import DistrictStats, build
from contracts.topics import ENROLLMENT_EVENTS, PAYMENT_EVENTS, REVIEW_EVENTS
from kernel.personal import new_data_key, seal
from kernel.relay import new_producer
from tests.support.infra import KAFKA_ADMIN, TOPIC_PREFIX, allow_topics, create_topics, principal, unique_name

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def envelope(event: Event, stream: str, producer: str) -> Envelope:
    return Envelope.wrap(event, stream_id=stream, stream_version=1, producer=producer, correlation_id="c")


def submitted(application_id: object, applicant_id: object, district: str) -> EnrollmentSubmitted:
    """v2: the applicant's name, birth date and phone sealed under their key (the subscriber has none)."""
    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    personal = seal(new_data_key(), UUID(str(applicant_id)), {"name": "张三", "phone": "+8613800138000"})
    return EnrollmentSubmitted.model_validate(
        {
            **example,
            "application_id": application_id,
            "applicant_id": applicant_id,
            "residence_district_code": district,
            "personal": personal.model_dump(mode="json"),
        }
    )


def submitted_v1(application_id: object, applicant_id: object, district: str) -> EnrollmentSubmittedV1:
    """As stored before sealing existed: the topics keep it forever."""
    example = EnrollmentSubmittedV1.model_json_schema()["examples"][0]
    return EnrollmentSubmittedV1.model_validate(
        {**example, "application_id": application_id, "applicant_id": applicant_id, "residence_district_code": district}
    )


def approved(application_id: UUID, applicant_id: UUID) -> ReviewDecided:
    return ReviewDecided(
        case_id=uuid4(), application_id=application_id, applicant_id=applicant_id, attempt=1,
        decision="approved", reasons=[], reviewer_id=uuid4(), decided_at=NOW,
    )  # fmt: skip


async def send(producer: AIOKafkaProducer, where: str, e: Envelope) -> None:
    await producer.send_and_wait(where, e.to_json(), key=e.kafka_key(), headers=e.kafka_headers())


async def test_counts_each_approval_once_per_district_whatever_the_order(tmp_path: Path) -> None:
    prefix = unique_name("example") + "."  # topics of its own: the counts below are exact
    await create_topics([prefix + t for t in (ENROLLMENT_EVENTS, REVIEW_EVENTS, PAYMENT_EVENTS)])
    allow_topics(prefix)
    application_id, applicant_id = uuid4(), uuid4()
    sub = envelope(submitted(application_id, applicant_id, "320481"), f"application-{application_id}", "enrollment")
    decided = envelope(approved(application_id, applicant_id), f"case-{application_id}", "review")
    old_application, old_applicant = uuid4(), uuid4()
    old_sub = envelope(
        submitted_v1(old_application, old_applicant, "320412"), f"application-{old_application}", "enrollment"
    )
    old_decided = envelope(approved(old_application, old_applicant), f"case-{old_application}", "review")
    assert old_sub.schema_version == 1 and sub.schema_version == 2
    unknown = Envelope(**{**decided.model_dump(), "event_id": uuid4(), "event_type": "SomethingNew"})
    producer = new_producer(KAFKA_ADMIN, client_id="test-example")
    await producer.start()
    try:
        await send(producer, prefix + REVIEW_EVENTS, decided)  # the decision first: topics interleave
        await send(producer, prefix + REVIEW_EVENTS, decided)  # delivered twice
        await send(producer, prefix + ENROLLMENT_EVENTS, sub)
        await send(producer, prefix + REVIEW_EVENTS, unknown)
        await send(producer, prefix + ENROLLMENT_EVENTS, old_sub)
        await send(producer, prefix + REVIEW_EVENTS, old_decided)
    finally:
        await producer.stop()

    state = tmp_path / "stats.json"
    # as its own read-only principal, in a group of its own (the session's groups: tests/conftest.py)
    subscriber = principal(SUBSCRIBER)
    group = f"{TOPIC_PREFIX}{SUBSCRIBER_GROUP_PREFIX}{unique_name('example')}"
    app, stats = build(subscriber.bootstrap, subscriber.security(), group, state, prefix)
    await app.broker.start()  # type: ignore[union-attr]
    try:
        for _ in range(300):
            if {str(e.event_id) for e in (decided, sub, old_sub, old_decided)} <= stats.seen:
                break
            await asyncio.sleep(0.1)
    finally:
        await app.broker.stop()  # type: ignore[union-attr]
    saved = json.loads(state.read_text())
    assert str(decided.event_id) in saved["seen"] and str(unknown.event_id) not in saved["seen"]
    assert saved["district_of"][str(application_id)] == "320481"
    assert saved["approved"] == {"320481": 1, "320412": 1}  # the duplicate delivery counted once
    assert sorted(saved["seen"]) == sorted(str(e.event_id) for e in (sub, decided, old_sub, old_decided))
    assert "张三" not in state.read_text(encoding="utf-8")  # it keeps no personal data, v1 or v2

    # a restart reads its state back and ignores what it has seen
    again = DistrictStats(state)
    assert not again.apply(decided) and again.approved == {"320481": 1, "320412": 1}
