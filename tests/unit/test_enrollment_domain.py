"""The application aggregate: each refusal code, resubmission, and stale review facts."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.documents import REQUIRED_DOCUMENTS
from contracts.envelope import Envelope
from contracts.events.base import Event, Sealed
from contracts.events.enrollment import ApplicationApproved, ApplicationRejected, ApplicationUnderReview
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from contracts.reference import load_districts
from kernel.personal import new_data_key, open_sealed, seal
from kernel.problems import Problem
from services.enrollment import domain
from services.enrollment.domain import Application, Person
from services.enrollment.rules import AgePolicy, Choices, missing_documents
from services.enrollment.service import registration_data

DISTRICTS = load_districts()
NOW = datetime(2025, 3, 2, 1, 30, tzinfo=UTC)
TODAY = date(2025, 3, 2)
POLICY = AgePolicy()
SHA = "a" * 64
ALL_DOCS = ("id_card_front", "id_card_back", "hukou_first_page", "hukou_own_page")
KEY = new_data_key()  # one test key for every applicant: these tests are about the domain, not keys


def SEAL(key_id: UUID, fields: Mapping[str, Any]) -> Sealed:  # noqa: N802 (a constant of the tests)
    return seal(KEY, key_id, fields)


def person(**overrides: Any) -> Person:
    fields: dict[str, Any] = {
        "user_id": uuid4(),
        "phone": "+8613800138000",
        "name": "张三",
        "birth_date": date(1990, 3, 7),
        "gender": "male",
        "id_number_masked": "3204**********1234",
    }
    return Person(**{**fields, **overrides})


def choices(**overrides: Any) -> Choices:
    fields: dict[str, Any] = {
        "pension_tier": 3,
        "medical_tier": 5,
        "household_kind": "changzhou",
        "household_region_code": "320402",
        "residence_district_code": "320411",
    }
    return Choices(**{**fields, **overrides})


class Stream:
    """An application's history in memory, replayed after each decision."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def add(self, *events: Event) -> Application:
        for event in events:
            app_id = str(getattr(event, "application_id", ""))
            envelope = Envelope.wrap(
                event,
                stream_id=f"application-{app_id}",
                stream_version=len(self.envelopes) + 1,
                producer="enrollment",
                correlation_id=f"c{len(self.envelopes) + 1}",  # each request its own
            )
            self.envelopes.append(envelope)
        return self.state

    @property
    def state(self) -> Application:
        app = domain.replay(self.envelopes)
        assert app is not None
        return app


def opened(who: Person | None = None, **choice: Any) -> tuple[Stream, Application, Person]:
    who = who or person()
    stream = Stream()
    events = domain.open_application(
        uuid4(), who, "2020-12", "2020-12", choices(**choice), DISTRICTS, POLICY, TODAY, NOW
    )
    return stream, stream.add(*events), who


def open_args(who: Person | None, notice: str | None = "2020-12", **choice: Any) -> tuple[Any, ...]:
    return (uuid4(), who, notice, "2020-12", choices(**choice), DISTRICTS, POLICY, TODAY, NOW)


def with_documents(stream: Stream, kinds: tuple[str, ...] = ALL_DOCS) -> Application:
    for kind in kinds:
        stream.add(domain.upload(stream.state, kind, SHA, "image/jpeg", 10, f"sha256/{SHA}", NOW))
    return stream.state


def refusal(call: Any, *args: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        call(*args)
    return caught.value


def test_opening_records_the_notice_version_and_the_choices() -> None:
    _, app, who = opened()
    assert app.applicant_id == who.user_id and app.notice_version == "2020-12"
    assert app.status == "draft" and app.choices == choices() and app.version == 2


def test_the_application_keeps_the_correlation_id_of_its_first_event() -> None:
    stream, _, _ = opened()
    app = with_documents(stream)
    assert [e.correlation_id for e in stream.envelopes][:3] == ["c1", "c2", "c3"]
    assert app.correlation_id == "c1" and app.version == len(stream.envelopes)


@pytest.mark.parametrize(
    ("notice", "code"), [(None, "notice_not_accepted"), ("", "notice_not_accepted"), ("2019-01", "notice_outdated")]
)
def test_the_current_notice_must_be_accepted(notice: str | None, code: str) -> None:
    assert refusal(domain.open_application, *open_args(person(), notice)).code == code


@pytest.mark.parametrize("who", [None, person(name=None, birth_date=None, gender=None)])
def test_only_a_verified_person_may_apply(who: Person | None) -> None:
    assert refusal(domain.open_application, *open_args(who)).code == "not_verified"


@pytest.mark.parametrize(
    ("choice", "code"),
    [
        ({"pension_tier": None, "medical_tier": None}, "nothing_to_enrol"),
        ({"pension_tier": 0}, "invalid_tier"),
        ({"pension_tier": 6}, "invalid_tier"),
        ({"medical_tier": 3}, "invalid_tier"),
        ({"household_kind": "changzhou", "household_region_code": "320583"}, "not_eligible_household"),
        ({"household_kind": "jiangsu_resident", "household_region_code": "320402"}, "not_eligible_household"),
        ({"household_kind": "jiangsu_resident", "household_region_code": "310101"}, "not_eligible_household"),
        ({"household_kind": "shanghai"}, "not_eligible_household"),
        ({"household_region_code": "329999"}, "invalid_region_code"),
        ({"residence_district_code": "320405"}, "unknown_district"),  # 戚墅堰, merged into 武进 in 2015
        ({"residence_district_code": "320583"}, "unknown_district"),
    ],
)
def test_choices_are_refused_with_their_own_code(choice: dict[str, Any], code: str) -> None:
    assert refusal(domain.open_application, *open_args(person(), **choice)).code == code


@pytest.mark.parametrize(("pension", "medical"), [(None, 5), (1, None), (5, 5)])
def test_one_insurance_may_be_none(pension: int | None, medical: int | None) -> None:
    _, app, _ = opened(pension_tier=pension, medical_tier=medical)
    assert app.choices is not None and app.choices.pension_tier == pension


def test_a_jiangsu_household_living_in_changzhou_is_eligible() -> None:
    stream, _, who = opened(household_kind="jiangsu_resident", household_region_code="320583")
    app = with_documents(stream, ("id_card_front", "id_card_back", "residence_permit"))
    submitted = domain.submit(app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
    assert submitted.household_region_code == "320583" and submitted.attempt == 1


def test_submission_carries_what_the_reviewer_needs() -> None:
    stream, _, who = opened()
    event = domain.submit(with_documents(stream), who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
    # the applicant's name, birth date and phone travel sealed under their own key, nothing in clear
    assert event.personal.key_id == who.user_id and event.personal.alg == "A256GCM"
    assert open_sealed(KEY, event.personal) == {"name": "张三", "birth_date": "1990-03-07", "phone": who.phone}
    assert "张三" not in event.model_dump_json() and "13800138000" not in event.model_dump_json()
    assert [d.kind for d in event.documents] == sorted(ALL_DOCS)
    assert event.notice_version == "2020-12"


NANJING: dict[str, Any] = {"household_kind": "jiangsu_resident", "household_region_code": "320106"}
RESIDENT_DOCS = ("id_card_front", "id_card_back", "residence_permit")


@pytest.mark.parametrize(
    ("household", "present", "missing"),
    [
        ({}, (), list(ALL_DOCS)),
        ({}, ("id_card_front", "id_card_back", "hukou_first_page"), ["hukou_own_page"]),
        # a Changzhou household proves it with the household register, not a residence permit
        ({}, RESIDENT_DOCS, ["hukou_first_page", "hukou_own_page"]),
        ({}, ("id_card_front", "hukou_first_page", "hukou_own_page"), ["id_card_back"]),
        ({}, ALL_DOCS, []),
        # a Jiangsu household from another city proves residence with the residence permit
        (NANJING, ALL_DOCS, ["residence_permit"]),
        (NANJING, ("id_card_front", "residence_permit"), ["id_card_back"]),
        (NANJING, RESIDENT_DOCS, []),
    ],
)
def test_documents_missing_names_what_the_household_kind_needs(
    household: dict[str, Any], present: tuple[str, ...], missing: list[str]
) -> None:
    stream, _, who = opened(**household)
    app = with_documents(stream, present)
    assert app.choices is not None and missing_documents(app.choices.household_kind, present) == missing
    if missing:
        problem = refusal(domain.submit, app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
        assert problem.code == "documents_missing" and problem.extensions["missing"] == missing
        assert problem.status == 422 and "请先上传" in problem.detail
    else:
        assert domain.submit(app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL).attempt == 1


def test_documents_missing_says_in_chinese_what_is_missing() -> None:
    stream, _, who = opened(**NANJING)
    problem = refusal(domain.submit, with_documents(stream), who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
    assert "居住证" in problem.detail and "户口簿" not in problem.detail.split("请先上传")[1]
    stream, _, who = opened()
    app = with_documents(stream, RESIDENT_DOCS)
    problem = refusal(domain.submit, app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
    assert problem.detail.endswith("请先上传：户口簿首页、户口簿本人页。")


@pytest.mark.parametrize(
    ("birth", "gender"), [(date(1965, 3, 2), "male"), (date(1970, 3, 1), "female"), (date(2009, 3, 3), "male")]
)
def test_age_is_told_when_the_application_is_opened(birth: date, gender: str) -> None:
    """Guide Q2: someone too old (or too young) learns it before uploading any document."""
    problem = refusal(domain.open_application, *open_args(person(birth_date=birth, gender=gender)))
    assert (problem.code, problem.status) == ("not_eligible_age", 422)


def test_age_is_checked_again_on_the_day_of_submission() -> None:
    """Opened the day before his 60th birthday, submitted on it: too late by then."""
    who = person(birth_date=date(1965, 3, 3))
    stream = Stream()
    args = (uuid4(), who, "2020-12", "2020-12", choices(), DISTRICTS, POLICY, TODAY, NOW)
    stream.add(*domain.open_application(*args))
    app = with_documents(stream)
    tomorrow = TODAY + timedelta(days=1)
    problem = refusal(domain.submit, app, who, POLICY, DISTRICTS, tomorrow, NOW, SEAL)
    assert problem.code == "not_eligible_age" and problem.status == 422
    assert domain.submit(app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL).attempt == 1


def test_a_person_whose_phone_has_not_arrived_yet_cannot_submit() -> None:
    stream, _, who = opened()
    problem = refusal(domain.submit, with_documents(stream), person(phone=None), POLICY, DISTRICTS, TODAY, NOW, SEAL)
    assert problem.code == "not_verified" and who.phone


def review(app: Application, attempt: int, decision: str | None = None, **extra: Any) -> ReviewDecided:
    reasons = [{"code": "document_unreadable", "text": "身份证反面照片不清晰。"}] if decision == "rejected" else []
    return ReviewDecided(
        case_id=uuid4(),
        application_id=app.application_id,
        applicant_id=app.applicant_id,
        attempt=attempt,
        decision=decision or "approved",
        reasons=reasons,
        reviewer_id=uuid4(),
        decided_at=NOW + timedelta(days=1),
        **extra,
    )


def case(app: Application, attempt: int) -> ReviewCaseOpened:
    return ReviewCaseOpened(
        case_id=uuid4(),
        application_id=app.application_id,
        applicant_id=app.applicant_id,
        attempt=attempt,
        agency_code="320411",
        due_on=TODAY + timedelta(days=2),
        opened_at=NOW,
    )


def submitted_stream() -> tuple[Stream, Person]:
    stream, _, who = opened()
    app = with_documents(stream)
    stream.add(domain.submit(app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL))
    return stream, who


def test_a_submitted_application_cannot_be_submitted_or_changed_again() -> None:
    stream, who = submitted_stream()
    app = stream.state
    problem = refusal(domain.submit, app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
    assert (problem.code, problem.status) == ("already_submitted", 409)
    assert refusal(domain.correct, app, choices(), DISTRICTS, NOW).code == "not_editable"
    assert refusal(domain.upload, app, "id_card_front", SHA, "image/png", 1, "r", NOW).code == "not_editable"


def test_review_facts_move_the_application_and_a_rejection_allows_a_second_attempt() -> None:
    stream, who = submitted_stream()
    under = domain.on_case_opened(stream.state, case(stream.state, 1))
    assert isinstance(under, ApplicationUnderReview)
    app = stream.add(under)
    assert app.status == "under_review" and app.agency_code == "320411"
    rejected = domain.on_decided(app, review(app, 1, "rejected"))
    assert isinstance(rejected, ApplicationRejected)
    app = stream.add(rejected)
    assert app.status == "rejected" and app.reasons[0].code == "document_unreadable"
    app = stream.add(domain.correct(app, choices(pension_tier=5), DISTRICTS, NOW))
    second = domain.submit(app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL)
    assert second.attempt == 2 and second.pension_tier == 5
    app = stream.add(second)
    # a stale decision about attempt 1 (e.g. a redelivery) does not flip attempt 2
    assert domain.on_decided(app, review(app, 1, "approved")) is None
    assert domain.on_case_opened(app, case(app, 1)) is None
    approved = domain.on_decided(app, review(app, 2, "approved"))
    assert isinstance(approved, ApplicationApproved)
    app = stream.add(approved)
    assert app.status == "approved" and app.approved_at is not None
    assert domain.on_decided(app, review(app, 2, "rejected")) is None  # decided once
    assert refusal(domain.submit, app, who, POLICY, DISTRICTS, TODAY, NOW, SEAL).code == "already_approved"


def test_the_agency_named_by_review_is_kept_for_the_registration_form() -> None:
    stream, _ = submitted_stream()
    named = case(stream.state, 1).model_copy(update={"agency_name": "新北区劳动就业管理中心"})
    under = domain.on_case_opened(stream.state, named)
    assert under is not None
    assert stream.add(under).agency_name == "新北区劳动就业管理中心"


def test_the_agency_notice_is_read_after_approval_once_before_the_form_can_be_printed() -> None:
    stream, _ = submitted_stream()
    app = stream.state
    problem = refusal(domain.accept_agency_notice, app, "2020-12", "2020-12", NOW)
    assert (problem.code, problem.status) == ("not_approved", 409)
    assert refusal(domain.check_printable, app).code == "not_approved"
    approved = domain.on_decided(app, review(app, 1, "approved"))
    assert approved is not None
    app = stream.add(approved)
    problem = refusal(domain.check_printable, app)
    assert (problem.code, problem.status) == ("agency_notice_not_read", 409)
    problem = refusal(domain.accept_agency_notice, app, "2019-01", "2020-12", NOW)
    assert (problem.code, problem.status) == ("notice_outdated", 422)
    (accepted,) = domain.accept_agency_notice(app, "2020-12", "2020-12", NOW)
    app = stream.add(accepted)
    assert (app.agency_notice_version, app.agency_notice_accepted_at) == ("2020-12", NOW)
    assert domain.accept_agency_notice(app, "2020-12", "2020-12", NOW) == []  # idempotent: no new event
    submitted, approved_at, version = domain.check_printable(app)
    assert submitted.attempt == 1 and approved_at == approved.decided_at and version == "2020-12"


@pytest.mark.parametrize(
    ("household", "region"),
    [
        ({"household_kind": "jiangsu_resident", "household_region_code": "320106"}, "江苏省南京市鼓楼区"),
        ({"household_kind": "jiangsu_resident", "household_region_code": "320302"}, "江苏省徐州市鼓楼区"),
        ({"household_region_code": "320402"}, "江苏省常州市天宁区"),
        ({"household_region_code": "320481"}, "江苏省常州市溧阳市"),
    ],
)
def test_the_registration_form_prints_province_city_and_district(household: dict[str, Any], region: str) -> None:
    stream, _, who = opened(residence_district_code="320404", **household)
    app = stream.state
    assert app.choices is not None
    docs = REQUIRED_DOCUMENTS[app.choices.household_kind]
    stream.add(domain.submit(with_documents(stream, docs), who, POLICY, DISTRICTS, TODAY, NOW, SEAL))
    approved = domain.on_decided(stream.state, review(stream.state, 1, "approved"))
    assert approved is not None
    app = stream.add(approved)
    app = stream.add(*domain.accept_agency_notice(app, "2020-12", "2020-12", NOW))
    submitted, _, _ = domain.check_printable(app)
    data = registration_data(app, submitted, open_sealed(KEY, submitted.personal), DISTRICTS)
    assert data.household_region == region
    assert data.residence_district == "常州市钟楼区"  # from the district reference
    assert data.agency == "常州市钟楼区人力资源和社会保障局劳动就业管理中心"  # review gave none: the residence's
