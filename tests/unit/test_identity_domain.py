"""identity's pure domain: phone numbers, resident ID numbers, verification rules."""

from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelope import Envelope
from contracts.events.base import Event, mask_id_number
from contracts.events.identity import PersonErased, UserRegisteredV1, UserVerified, UserVerifiedV1
from contracts.reference import load_districts
from kernel.auth import Role
from kernel.personal import new_data_key, open_sealed, seal
from kernel.problems import Conflict, NotFound, Refused
from services.identity import domain
from services.identity.resident_id import InvalidIdNumber, parse_resident_id
from tests.support.people import id_number
from tests.support.upcasting import next_version

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
TODAY = date(2026, 11, 26)
DIRECTORY = load_districts()
KEY = new_data_key()


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "86-138-0013-8000", "138 0013 8000"])
def test_mainland_mobiles_are_normalized_to_e164(raw: str) -> None:
    assert domain.normalize_mainland_mobile(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["", "abc", "12345", "051968888888", "+1 415 555 0100", "1380013800", "23800138000"])
def test_other_numbers_are_refused_as_invalid_phone(raw: str) -> None:
    with pytest.raises(Refused) as refused:
        domain.normalize_mainland_mobile(raw)
    assert refused.value.code == "invalid_phone"


@pytest.mark.parametrize("password", ["short1", "aaaaaaa1", "1234567890", "Password123", "          "])
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(Refused) as refused:
        domain.check_password(password)
    assert refused.value.code == "weak_password"


@given(
    birth=st.dates(min_value=date(1940, 1, 1), max_value=date(2010, 12, 31)),
    male=st.booleans(),
    seq=st.integers(0, 400),
)
def test_birth_date_and_gender_come_from_the_id_number(birth: date, male: bool, seq: int) -> None:
    resident = parse_resident_id(id_number(birth, male=male, seq=seq), TODAY)
    assert resident.birth_date == birth
    assert resident.gender == ("male" if male else "female")
    assert resident.region_code == "320402"
    assert resident.masked.startswith("3204") and resident.masked.count("*") == 10


def test_a_district_code_newer_than_the_birth_year_is_accepted() -> None:
    # 320412 武进区 dates from 1995; people born earlier carry it on cards issued later.
    assert parse_resident_id(id_number(date(1980, 5, 1), region="320412"), TODAY).region_code == "320412"


@pytest.mark.parametrize(
    "raw",
    [
        "320402199001010018",  # wrong check character
        "32040219900101001",  # 17 characters
        "320402199002300017",  # 30 February
        "999999199001010017",  # no such region
        "32040220990101001X",  # born in the future
    ],
)
def test_unsound_id_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidIdNumber):
        parse_resident_id(raw, TODAY)


def account_of(user_id: UUID | None = None) -> domain.Account:
    return domain.Account(user_id or uuid4(), "applicant", "+86138****8000", version=1)


def sealer(user_id: UUID) -> domain.Sealer:
    return partial(seal, KEY, user_id)


def test_register_seals_the_phone_and_publishes_it_masked() -> None:
    user_id = uuid4()
    event = domain.register(user_id, "+8613800138000", "applicant", NOW, sealer(user_id))
    assert event.phone_masked == "+86138****8000" and event.personal.alg == "A256GCM"
    assert "13800138000" not in event.model_dump_json()
    assert open_sealed(KEY, event.personal, owner=user_id) == {"phone": "+8613800138000"}


def test_verify_derives_the_facts_seals_name_and_birth_date_and_masks_the_number() -> None:
    account = account_of()
    number = id_number(date(1990, 3, 7), male=False, region="320481")
    event, resident, name = domain.verify(account, " 张三 ", number, "local", NOW, TODAY, sealer(account.user_id))
    assert name == "张三" and event.gender == "female" and resident.birth_date == date(1990, 3, 7)
    assert open_sealed(KEY, event.personal, owner=account.user_id) == {"name": "张三", "birth_date": "1990-03-07"}
    assert event.id_number_masked == f"3204{'*' * 10}{number[-4:]}"
    published = event.model_dump_json()
    for clear in (number, "张三", "\\u5f20", "1990-03-07", "19900307", "320481"):
        assert clear not in published, clear
    assert resident.number == number


def test_verify_refuses_a_second_verification_bad_names_and_an_erased_account() -> None:
    account = account_of()
    seal_it = sealer(account.user_id)
    event, _, _ = domain.verify(account, "艾力·买买提", id_number(date(1990, 1, 1)), "local", NOW, TODAY, seal_it)
    verified = replace(account, verified=event, version=2)
    with pytest.raises(Conflict) as conflict:
        domain.verify(verified, "张三", id_number(date(1990, 1, 1)), "local", NOW, TODAY, seal_it)
    assert conflict.value.code == "already_verified"
    with pytest.raises(Refused) as refused:
        domain.verify(account, "Zhang San", id_number(date(1990, 1, 1)), "local", NOW, TODAY, seal_it)
    assert refused.value.code == "invalid_name"
    with pytest.raises(NotFound) as gone:
        domain.verify(replace(account, erased=True), "张三", id_number(date(1990, 1, 1)), "local", NOW, TODAY, seal_it)
    assert gone.value.code == "user_not_found"


def test_erasure_is_recorded_once_and_replays_as_erased() -> None:
    user_id = uuid4()
    registered = domain.register(user_id, "+8613800138000", "applicant", NOW, sealer(user_id))
    account = domain.replay([_stored(registered, user_id, 1)])
    assert account is not None and not account.erased and account.version == 1
    erased = domain.erase(account, NOW)
    assert erased == PersonErased(user_id=user_id, erased_at=NOW)
    after = domain.replay([_stored(registered, user_id, 1), _stored(erased, user_id, 2)])
    assert after is not None and after.erased and after.version == 2
    assert domain.erase(after, NOW) is None  # erasing twice changes nothing


def test_a_v1_history_replays_with_its_clear_fields_as_alg_none() -> None:
    """Accounts registered and verified before sealing existed still load (stored v1 events)."""
    user_id = uuid4()
    number = id_number(date(1985, 5, 6), male=False)
    registered = UserRegisteredV1(user_id=user_id, phone="+8613800138000", role="applicant", registered_at=NOW)
    history = [
        _stored(registered, user_id, 1),
        _stored(
            UserVerifiedV1(
                user_id=user_id, name="李四", id_number_masked=mask_id_number(number), birth_date=date(1985, 5, 6),
                gender="female", id_region_code=number[:6], provider="local", verified_at=NOW,
            ),
            user_id,
            2,
        ),
    ]  # fmt: skip
    account = domain.replay(history)
    assert account is not None and account.phone_masked == "+86138****8000" and account.version == 2
    assert account.verified is not None and account.verified.personal.alg == "none"
    assert open_sealed(None, account.verified.personal, owner=user_id) == {"name": "李四", "birth_date": "1985-05-06"}


@pytest.mark.parametrize(("role", "agency", "kept"), [("reviewer", None, None), ("reviewer", "320411", "320411"),
                                                      ("reviewer", " 320481 ", "320481"), ("operator", None, None),
                                                      ("applicant", None, None)])  # fmt: skip
def test_a_reviewer_may_be_bound_to_an_agency(role: Role, agency: str | None, kept: str | None) -> None:
    assert domain.check_staff_agency(role, agency, DIRECTORY) == kept


@pytest.mark.parametrize(
    ("role", "agency", "code"),
    [
        ("reviewer", "32041", "unknown_agency"),
        ("reviewer", "3204111", "unknown_agency"),
        ("reviewer", "新北区", "unknown_agency"),
        ("reviewer", "", "unknown_agency"),
        ("reviewer", "110101", "unknown_agency"),  # a real code, but no agency of Changzhou's
        ("reviewer", "320499", "unknown_agency"),
        ("operator", "320411", "agency_not_allowed"),
        ("applicant", "320411", "agency_not_allowed"),
    ],
)
def test_an_unknown_agency_or_one_on_a_non_reviewer_is_refused(role: Role, agency: str, code: str) -> None:
    with pytest.raises(Refused) as refused:
        domain.check_staff_agency(role, agency, DIRECTORY)
    assert refused.value.code == code


def test_replay_upcasts_stored_events() -> None:
    """An account written with UserVerified v1 is read as the newest version: replay goes through
    kernel.aggregate, never `model_validate` of the stored data (which would skip the upcaster)."""
    user_id = uuid4()
    registered = domain.register(user_id, "+8613800138000", "applicant", NOW, sealer(user_id))
    account = domain.replay([_stored(registered, user_id, 1)])
    assert account is not None
    verified, _, _ = domain.verify(account, "张三", id_number(date(1990, 1, 1)), "local", NOW, TODAY, sealer(user_id))
    history = [_stored(registered, user_id, 1), _stored(verified, user_id, 2)]

    def renamed_provider(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "provider": f"{data['provider']}-v2"}

    with next_version(UserVerified, renamed_provider) as newer:
        replayed = domain.replay(history)
    assert replayed is not None and isinstance(replayed.verified, newer)
    assert replayed.verified.provider == "local-v2" and replayed.version == 2


def _stored(event: Event, user_id: UUID, version: int) -> Envelope:
    return Envelope.wrap(
        event, stream_id=domain.stream_id(user_id), stream_version=version, producer="identity", correlation_id="c"
    )
