"""The review case: routing, due date, one case per submission, decision rules, replay."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.envelope import Envelope
from contracts.events.base import Event, event_class, latest_version
from contracts.events.enrollment import EnrollmentSubmitted
from contracts.events.review import ReviewDecided
from contracts.reference import load_districts
from contracts.upcasting import has_upcaster
from kernel.problems import Conflict, Refused
from services.review import domain
from services.review.domain import ReasonInput
from services.review.reasons import ReasonCatalogue, ReasonCode
from services.review.workdays import WorkingCalendar
from tests.support.upcasting import next_version

SHIPPED = Path(__file__).resolve().parents[2] / "services" / "review"
DISTRICTS = load_districts()
REASONS = ReasonCatalogue.from_file(SHIPPED / "reason_codes.toml")
NOW = datetime(2025, 9, 30, 3, 0, tzinfo=UTC)
REVIEWER = UUID("1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b")


def submitted(**changes: Any) -> EnrollmentSubmitted:
    example = EnrollmentSubmitted.model_json_schema()["examples"][0]
    return EnrollmentSubmitted.model_validate({**example, "submitted_at": "2025-09-30T02:00:00Z", **changes})


def envelope(event: Event, version: int) -> Envelope:
    return Envelope.wrap(event, stream_id="case-x", stream_version=version, producer="review", correlation_id="c-1")


def opened_case(**changes: Any) -> domain.Case:
    opened = domain.open_case(submitted(**changes), DISTRICTS.agency_for("320411"), WorkingCalendar(), 2, NOW)
    case = domain.replay([envelope(opened, 1)])
    assert case is not None
    return case


@pytest.mark.parametrize(
    ("district", "agency_code", "name_part"),
    [
        ("320402", "320402", "天宁区"),
        ("320404", "320404", "钟楼区"),
        ("320411", "320411", "新北区"),
        ("320412", "320412", "武进区"),
        ("320413", "320413", "金坛区"),
        ("320481", "320481", "溧阳市"),
        ("320405", "320400", "常州市劳动就业管理中心"),  # former 戚墅堰区: no office of its own
    ],
)
def test_a_case_goes_to_the_agency_of_the_residence_district(district: str, agency_code: str, name_part: str) -> None:
    agency = DISTRICTS.agency_for(district)
    assert agency.code == agency_code and name_part in agency.name


def test_opening_sets_agency_and_the_working_day_due_date() -> None:
    opened = domain.open_case(submitted(), DISTRICTS.agency_for("320411"), WorkingCalendar(), 2, NOW)
    assert opened.agency_code == "320411"
    assert opened.agency_name == "常州市新北区人力资源和社会保障局劳动就业管理中心"
    assert opened.due_on == date(2025, 10, 10)  # after the National Day holiday
    assert opened.opened_at == NOW


def test_one_submission_has_one_case_id_whoever_publishes_it() -> None:
    first = submitted()
    again = submitted()
    assert domain.case_id_for(first.application_id, 1) == domain.case_id_for(again.application_id, 1)
    assert domain.case_id_for(first.application_id, 1) != domain.case_id_for(first.application_id, 2)
    assert domain.case_id_for(first.application_id, 1) != domain.case_id_for(uuid4(), 1)


def test_approval_carries_no_reasons() -> None:
    decided = domain.decide(opened_case(), "approved", [], REASONS, REVIEWER, NOW)
    assert decided.decision == "approved" and decided.reasons == [] and decided.reviewer_id == REVIEWER
    with pytest.raises(Refused) as refused:
        domain.decide(opened_case(), "approved", [ReasonInput("documents_unreadable")], REASONS, REVIEWER, NOW)
    assert refused.value.code == "reasons_not_allowed"


def test_rejection_needs_a_known_reason() -> None:
    with pytest.raises(Refused) as none_given:
        domain.decide(opened_case(), "rejected", [], REASONS, REVIEWER, NOW)
    assert none_given.value.code == "reasons_required"
    with pytest.raises(Refused) as unknown:
        domain.decide(opened_case(), "rejected", [ReasonInput("looks_odd")], REASONS, REVIEWER, NOW)
    assert unknown.value.code == "invalid_reason" and unknown.value.status == 422


def test_rejection_reasons_read_as_label_plus_the_reviewers_words() -> None:
    reasons = [ReasonInput("documents_unreadable", " 身份证反面模糊 "), ReasonInput("identity_mismatch")]
    decided = domain.decide(opened_case(), "rejected", reasons, REASONS, REVIEWER, NOW)
    assert [(r.code, r.text) for r in decided.reasons] == [
        ("documents_unreadable", "证件照片不清晰：身份证反面模糊"),
        ("identity_mismatch", "身份信息不一致"),
    ]


def test_other_needs_the_reviewers_own_words() -> None:
    with pytest.raises(Refused) as refused:
        domain.decide(opened_case(), "rejected", [ReasonInput("other", "  ")], REASONS, REVIEWER, NOW)
    assert refused.value.code == "reason_text_required"
    decided = domain.decide(
        opened_case(), "rejected", [ReasonInput("other", "请本人到窗口核实")], REASONS, REVIEWER, NOW
    )
    assert decided.reasons[0].text == "其他：请本人到窗口核实"


def test_a_decided_case_cannot_be_decided_again() -> None:
    case = opened_case()
    decided = domain.decide(case, "approved", [], REASONS, REVIEWER, NOW)
    replayed = domain.replay([envelope(case.opened, 1), envelope(decided, 2)])
    assert replayed is not None and replayed.version == 2
    with pytest.raises(Conflict) as conflict:
        domain.decide(replayed, "rejected", [ReasonInput("other", "x")], REASONS, REVIEWER, NOW)
    assert conflict.value.code == "already_decided" and conflict.value.status == 409


def test_age_in_full_years_and_overdue_from_the_day_after_the_due_date() -> None:
    assert domain.age_on(date(1990, 3, 7), date(2025, 3, 6)) == 34
    assert domain.age_on(date(1990, 3, 7), date(2025, 3, 7)) == 35
    assert not domain.is_overdue(date(2025, 10, 10), decided=False, today=date(2025, 10, 10))
    assert domain.is_overdue(date(2025, 10, 10), decided=False, today=date(2025, 10, 11))
    assert not domain.is_overdue(date(2025, 10, 10), decided=True, today=date(2025, 10, 11))


def test_a_broken_reason_list_is_refused_at_start() -> None:
    with pytest.raises(ValueError):
        ReasonCatalogue((ReasonCode("other", "其他"), ReasonCode("other", "其他")))


def test_the_shipped_reason_list_has_chinese_labels_and_other_needs_text() -> None:
    codes = {c.code: c for c in REASONS.codes}
    assert set(codes) == {
        "documents_unreadable",
        "documents_mismatch",
        "household_not_eligible",
        "identity_mismatch",
        "other",
    }
    assert codes["other"].text_required and not codes["documents_unreadable"].text_required
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in c.label) for c in REASONS.codes)


@pytest.fixture
def decided_v2() -> Iterator[type[ReviewDecided]]:
    """A v2 of ReviewDecided whose upcaster rewrites each reason's text, for this test only."""

    def reword(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "reasons": [{**r, "text": f"（v2）{r['text']}"} for r in data["reasons"]]}

    with next_version(ReviewDecided, reword) as newer:
        yield newer


def test_replay_upcasts_stored_events(decided_v2: type[ReviewDecided]) -> None:
    """A stream written with ReviewDecided v1 is read as the newest version (kernel.aggregate)."""
    case = opened_case()
    decided = domain.decide(case, "rejected", [ReasonInput("identity_mismatch")], REASONS, REVIEWER, NOW)
    stored = envelope(decided, 2)
    assert stored.schema_version == 1
    replayed = domain.replay([envelope(case.opened, 1), stored])
    assert replayed is not None and replayed.decided is not None
    assert [r.text for r in replayed.decided.reasons] == ["（v2）身份信息不一致"]
    assert isinstance(replayed.decided, decided_v2)
    assert replayed.version == 2 and replayed.correlation_id == "c-1"


def test_a_temporary_version_is_forgotten_afterwards() -> None:
    with next_version(ReviewDecided, lambda data: data) as newer:
        assert latest_version("ReviewDecided") == 2 and has_upcaster("ReviewDecided", 1)
    assert latest_version("ReviewDecided") == 1 and not has_upcaster("ReviewDecided", 1)
    assert event_class("ReviewDecided", 1) is ReviewDecided and newer is not ReviewDecided


def test_the_applicants_opened_data_is_kept_with_the_phone_masked_and_an_erased_one_is_none() -> None:
    """docs/personal-data.md: review keeps name and birth date, the phone only masked; data whose key
    is gone (the person erased) opens to None and stays None."""
    opened = {"name": "张三", "birth_date": "1990-03-07", "phone": "+8613800138000"}
    assert domain.applicant_data(opened) == domain.ApplicantData("张三", date(1990, 3, 7), "+86138****8000")
    assert domain.applicant_data(None) is None
    with pytest.raises(ValueError):
        domain.applicant_data({**opened, "phone": "12345"})  # not a mainland mobile: not what was sealed
