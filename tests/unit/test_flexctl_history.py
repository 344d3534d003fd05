"""What `flexctl history` keeps and prints, without Kafka: which events belong to an application,
and the masked one-line summaries."""

from uuid import UUID, uuid4

from contracts.envelope import Envelope
from contracts.events.base import Sealed
from kernel.personal import open_sealed
from ops.history import Entry, Related, json_line, summary
from tests.support.journey import BIRTH, NAME, SUBMITTED_PHONE, journey


def related_of(envelopes: list[Envelope], application_id: UUID) -> Related:
    """What the first pass learns: from the events that name the application."""
    own = [Entry("t", e) for e in envelopes if e.data.get("application_id") == str(application_id)]
    return Related.of(application_id, own)


def test_the_history_takes_the_applicants_facts_but_not_another_applications() -> None:
    j, other = journey(), journey()
    related = related_of(j.envelopes, j.application_id)
    assert all(related.includes(e) for e in j.envelopes)  # identity, review, notify, payment alike
    assert not any(related.includes(e) for e in other.envelopes)
    # the same person's next application is another history, though it names the same applicant
    drafted = next(e for e in j.envelopes if e.event_type == "ApplicationDrafted")
    later = drafted.model_copy(update={"data": {**drafted.data, "application_id": str(uuid4())}})
    assert later.data["applicant_id"] == str(j.applicant_id) and not related.includes(later)


def test_summaries_say_what_happened_and_mask_numbers() -> None:
    j = journey()
    first = {e.event_type: e for e in reversed(j.envelopes)}
    assert summary(first["ReviewDecided"]) == "attempt 1; rejected; reasons document_unreadable"
    assert "template review_rejected" in summary(first["SmsSent"])
    submitted = summary(first["EnrollmentSubmitted"])
    assert "tiers pension 3 medical 5" in submitted and "id 3204**********1234" in submitted
    # name, birth date and phone travel sealed (docs/personal-data.md): not even the envelope has them
    for clear in (SUBMITTED_PHONE, NAME, BIRTH.isoformat()):
        assert clear not in submitted and clear not in json_line(first["EnrollmentSubmitted"])
        assert clear not in first["EnrollmentSubmitted"].model_dump_json()
    assert open_sealed(j.key, Sealed.model_validate(first["EnrollmentSubmitted"].data["personal"]))["name"] == NAME
