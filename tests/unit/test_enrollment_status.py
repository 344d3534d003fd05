"""The status projection is a function of the SET of facts: any order, any duplicates."""

from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelope import Envelope
from services.enrollment.status import fold
from tests.support.journey import DOCS, Journey, journey


def noise() -> list[Envelope]:
    """Another person's journey on the same topics must not leak into this view."""
    return journey().envelopes


def test_the_journey_in_order_ends_active_with_its_history() -> None:
    j = journey()
    view = fold(j.application_id, j.envelopes)
    assert view is not None
    assert view.status == "active" and view.attempt == 2 and view.pension_tier == 4
    assert view.agency_code == "320411" and view.notified and view.review_reasons == []
    approved = next(e for e in reversed(j.envelopes) if e.event_type == "ApplicationApproved")
    assert view.case_id is not None and str(view.case_id) == approved.data["case_id"]
    assert view.applicant_id == j.applicant_id and view.documents == sorted(DOCS)
    kinds = [e.kind for e in view.timeline]
    assert kinds[:3] == ["verified", "notice_accepted", "drafted"]
    assert kinds.count("rejected") == 1 and kinds.count("approved") == 1  # review facts and copies once
    assert kinds.count("sms_sent") == 2 and kinds[-1] == "payment_settled"
    assert kinds.index("approved") < kinds.index("agency_notice_accepted") < kinds.index("payment_settled")
    assert view.agency_notice_version == "2020-12" and view.agency_notice_accepted_at is not None
    assert "阅读劳动事务代理人员须知" in [e.label for e in view.timeline]
    assert [e.at for e in view.timeline] == sorted(e.at for e in view.timeline)


def prefix_view(j: Journey, count: int) -> Any:
    return fold(j.application_id, j.envelopes[:count])


def test_each_stage_of_the_journey_has_its_status() -> None:
    j = journey()
    types = [e.event_type for e in j.envelopes]
    stages = {
        types.index("ApplicationDrafted") + 1: "draft",
        types.index("EnrollmentSubmitted") + 1: "submitted",
        types.index("ApplicationUnderReview") + 1: "under_review",
        types.index("ApplicationRejected") + 1: "rejected",
        len(types) - 1: "approved",
    }
    for count, status in stages.items():
        assert prefix_view(j, count).status == status, status
    rejected = prefix_view(j, types.index("SmsSent") + 1)
    assert rejected.review_reasons[0].code == "document_unreadable" and rejected.notified


def test_a_stale_decision_does_not_flip_a_later_attempt() -> None:
    j = journey()
    second_submission = [e for e in j.envelopes if e.event_type == "EnrollmentSubmitted"][1]
    first_decision = next(e for e in j.envelopes if e.event_type == "ApplicationRejected")
    view = fold(j.application_id, [second_submission, first_decision, *j.envelopes[:3]])
    assert view is not None and view.status == "submitted" and view.attempt == 2 and view.review_reasons == []


def test_the_view_names_the_review_case_of_the_latest_submission() -> None:
    j = journey()
    cases = [e.data["case_id"] for e in j.envelopes if e.event_type == "ApplicationUnderReview"]
    types = [e.event_type for e in j.envelopes]
    submitted = prefix_view(j, types.index("EnrollmentSubmitted") + 1)
    first = prefix_view(j, types.index("ApplicationUnderReview") + 1)
    assert submitted.case_id is None and str(first.case_id) == cases[0]
    view = fold(j.application_id, j.envelopes)
    assert view is not None and str(view.case_id) == cases[1] != cases[0]


def test_the_view_is_made_of_enrollments_copies_of_review_facts() -> None:
    """The status subscription does not read review.events: the originals change nothing."""
    j = journey()
    without = [e for e in j.envelopes if e.producer != "review"]
    view = fold(j.application_id, without)
    assert view is not None and view == fold(j.application_id, j.envelopes)
    kinds = [entry.kind for entry in view.timeline]
    assert kinds.count("review_opened") == 2 and kinds.count("approved") == 1 and kinds.count("rejected") == 1


def test_facts_of_unknown_applications_give_no_view() -> None:
    assert fold(uuid4(), journey().envelopes) is None


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_order_with_duplicates_gives_the_same_view(data: st.DataObject) -> None:
    j = journey()
    facts = j.envelopes + noise()
    expected = fold(j.application_id, facts)
    duplicates = data.draw(st.lists(st.sampled_from(facts), max_size=10))
    shuffled = data.draw(st.permutations(facts + duplicates))
    assert fold(j.application_id, shuffled) == expected


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_subset_in_any_order_gives_the_view_of_that_subset(data: st.DataObject) -> None:
    """Live processing sees subsets; whatever arrived, the view depends only on which facts did."""
    j = journey()
    subset = data.draw(st.lists(st.sampled_from(j.envelopes), unique_by=lambda e: e.event_id))
    shuffled = data.draw(st.permutations(subset))
    assert fold(j.application_id, shuffled) == fold(j.application_id, sorted(subset, key=lambda e: str(e.event_id)))
