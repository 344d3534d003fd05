"""The public contracts: committed schemas, compatibility rules, envelopes, upcasting."""

import json
import os
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import topics
from contracts.compat import breaking_changes
from contracts.envelope import Envelope
from contracts.events import (
    ALL_EVENTS,
    EVENTS_BY_TOPIC,
    PUBLIC_EVENTS,
    Event,
    latest_version,
    registered_events,
    topic_of,
)
from contracts.events.base import Sealed, mask_id_number, mask_phone
from contracts.events.enrollment import EnrollmentSubmitted, EnrollmentSubmittedV1
from contracts.events.identity import PersonErased, UserRegistered, UserRegisteredV1, UserVerified, UserVerifiedV1
from contracts.events.payment import BillIssued, PaymentSettled
from contracts.events.review import ReviewDecided
from contracts.generate import (
    ASYNCAPI_FILE,
    CONTRACTS_DIR,
    asyncapi_document,
    check,
    event_schema,
    generate,
    main,
    render,
    schema_path,
)
from contracts.upcasting import (
    MissingUpcasterError,
    UnknownEventError,
    decode,
    has_upcaster,
    register_upcaster,
    upcast,
)


def example(cls: type[Event]) -> dict[str, Any]:
    examples: list[dict[str, Any]] = cls.model_json_schema()["examples"]
    return examples[0]


def envelope_for(event: Event, **overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "stream_id": "s-1",
        "stream_version": 1,
        "producer": "test",
        "correlation_id": "c-1",
        **overrides,
    }
    return Envelope.wrap(event, **fields)


SUPERSEDED: tuple[type[Event], ...] = (UserRegisteredV1, UserVerifiedV1, EnrollmentSubmittedV1)
"""Older versions of public events, still registered so that stored history decodes."""

_EXAMPLE_SEALED: dict[str, Any] = UserRegistered.model_json_schema()["examples"][0]["personal"]
_SEALED_FOR_SOMEONE_ELSE = {**_EXAMPLE_SEALED, "key_id": "8c3e1f5a-0000-4000-8000-000000000001"}


def committed(relative: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONTRACTS_DIR / relative).read_text(encoding="utf-8"))
    return loaded


# --- committed files ---------------------------------------------------------------------------


def test_committed_contract_files_are_up_to_date() -> None:
    assert check() == [], "run `python -m contracts.generate` and commit the result"


@pytest.mark.parametrize("cls", PUBLIC_EVENTS, ids=lambda c: c.event_type)
def test_current_models_do_not_break_the_committed_schemas(cls: type[Event]) -> None:
    assert breaking_changes(committed(schema_path(cls)), event_schema(cls)) == []


def test_every_event_class_of_the_contracts_is_listed_with_its_topic() -> None:
    defined = {c for c in registered_events() if c.__module__.startswith("contracts.events.")}
    assert defined == set(ALL_EVENTS) | set(SUPERSEDED)
    for old in SUPERSEDED:  # an older version is listed nowhere, but decodes up to the current one
        assert old not in ALL_EVENTS and latest_version(old.event_type) > old.schema_version
        assert all(has_upcaster(old.event_type, v) for v in range(old.schema_version, latest_version(old.event_type)))
    assert set(EVENTS_BY_TOPIC) == set(topics.EVENT_TOPICS)
    for cls in ALL_EVENTS:
        service = cls.__module__.rsplit(".", 1)[1]
        assert topic_of(cls) == topics.events_topic(service)
    required = {"UserVerified", "EnrollmentSubmitted", "ReviewDecided", "PaymentSettled"}
    assert required <= {c.event_type for c in PUBLIC_EVENTS}


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.event_type)
def test_every_field_is_described(cls: type[Event]) -> None:
    assert cls.__doc__
    for name, info in cls.model_fields.items():
        assert info.description, f"{cls.event_type}.{name} has no description"


def test_asyncapi_document_has_one_channel_per_topic_and_every_ref_resolves() -> None:
    document = committed(ASYNCAPI_FILE)
    assert document["asyncapi"] == "3.0.0"
    assert sorted(c["address"] for c in document["channels"].values()) == sorted(topics.EVENT_TOPICS)
    messages = document["components"]["messages"]
    for cls in PUBLIC_EVENTS:
        message = messages[f"{cls.event_type}.v{cls.schema_version}"]
        assert set(message["headers"]["required"]) == {"event_type", "correlation_id"}
        payload = message["payload"]
        assert payload["properties"]["data"] == {"$ref": f"#/components/schemas/{cls.event_type}.v{cls.schema_version}"}
        assert payload["properties"]["event_type"]["const"] == cls.event_type
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        Envelope.model_validate(message["examples"][0]["payload"])

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(document):
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref
    assert document == asyncapi_document()


# --- events and envelopes ----------------------------------------------------------------------

_OFFSETS = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-14), max_value=timedelta(hours=14)).map(
        lambda d: timedelta(minutes=int(d.total_seconds() // 60))
    ),
)
_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


@settings(max_examples=60)
@given(
    cls=st.sampled_from(PUBLIC_EVENTS),
    event_id=st.uuids(),
    stream_id=_TEXT,
    stream_version=st.integers(min_value=1, max_value=2**40),
    occurred_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS),
    correlation_id=_TEXT,
    causation_id=st.none() | st.uuids().map(str),
)
def test_every_public_event_round_trips_through_envelope_json(
    cls: type[Event],
    event_id: UUID,
    stream_id: str,
    stream_version: int,
    occurred_at: datetime,
    correlation_id: str,
    causation_id: str | None,
) -> None:
    event = cls.model_validate(example(cls))
    envelope = Envelope.wrap(
        event,
        stream_id=stream_id,
        stream_version=stream_version,
        producer=topic_of(cls).removesuffix(".events"),
        correlation_id=correlation_id,
        causation_id=causation_id,
        event_id=event_id,
        occurred_at=occurred_at,
    )
    raw = envelope.to_json()
    received = Envelope.from_json(raw)
    assert received == envelope
    assert received.occurred_at == occurred_at
    assert json.loads(raw)["occurred_at"].endswith("Z")
    decoded = decode(received)
    assert type(decoded) is cls
    assert decoded == event
    assert decoded.payload() == example(cls)


def test_envelope_json_is_utc_and_carries_headers_and_key() -> None:
    event = UserVerified.model_validate(example(UserVerified))
    at = datetime(2025, 3, 2, 9, 20, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    envelope = envelope_for(event, occurred_at=at, correlation_id="corr-1", stream_id=str(event.user_id))
    value = json.loads(envelope.to_json())
    assert value["occurred_at"] == "2025-03-02T01:20:00.123456Z"
    assert value["event_type"] == "UserVerified"
    assert value["schema_version"] == 2
    assert value["data"]["verified_at"] == "2025-03-02T01:20:00Z"
    assert envelope.kafka_headers() == [("event_type", b"UserVerified"), ("correlation_id", b"corr-1")]
    assert envelope.kafka_key() == str(event.user_id).encode()


def test_event_datetimes_are_normalised_to_utc() -> None:
    data = {**example(UserVerified), "verified_at": "2025-03-02T09:20:00+08:00"}
    event = UserVerified.model_validate(data)
    assert event.verified_at.tzinfo == UTC
    assert event.payload()["verified_at"] == "2025-03-02T01:20:00Z"
    with pytest.raises(ValidationError):
        UserVerified.model_validate({**data, "verified_at": "2025-03-02T09:20:00"})


def test_masks_match_the_contract_formats() -> None:
    assert mask_phone("+8613800138000") == "+86138****8000"
    assert mask_id_number("32040219900307123x") == "3204**********123X"
    verified = {**example(UserVerified), "id_number_masked": mask_id_number("320402199003071234")}
    UserVerified.model_validate(verified)


@pytest.mark.parametrize(
    ("cls", "change"),
    [
        (UserVerified, {"gender": "female"}),  # 17th digit 3 is odd: male
        (UserVerifiedV1, {"id_region_code": "320104"}),  # masked number starts 3204
        (UserVerified, {"id_number_masked": "320402199003071234"}),  # not masked
        (UserVerified, {"id_number_masked": "32040**********234"}),  # five leading characters shown
        (UserVerified, {"personal": _SEALED_FOR_SOMEONE_ELSE}),  # moved from another person
        (UserRegistered, {"personal": _SEALED_FOR_SOMEONE_ELSE}),
        (UserRegistered, {"phone_masked": "+8613800138000"}),  # not masked
        (UserRegistered, {"personal": {**_EXAMPLE_SEALED, "nonce": None}}),  # A256GCM needs its nonce
        (UserRegistered, {"personal": {**_EXAMPLE_SEALED, "nonce": "AQEB"}}),  # not 12 bytes
        (UserRegistered, {"personal": {**_EXAMPLE_SEALED, "data": "not base64!"}}),
        (UserRegistered, {"personal": {**_EXAMPLE_SEALED, "alg": "none"}}),  # none carries no nonce
        (UserRegistered, {"personal": {**_EXAMPLE_SEALED, "alg": "A128CBC"}}),
        (EnrollmentSubmitted, {"pension_tier": 6}),
        (EnrollmentSubmitted, {"medical_tier": 3}),
        (EnrollmentSubmittedV1, {"phone": "13800138000"}),  # not E.164
        (EnrollmentSubmitted, {"personal": _SEALED_FOR_SOMEONE_ELSE}),
        (EnrollmentSubmitted, {"residence_district_code": "32041"}),
        (EnrollmentSubmitted, {"gender": "female"}),  # the masked number's 17th digit is odd
        (EnrollmentSubmitted, {"household_kind": "shanghai"}),
        (ReviewDecided, {"reasons": []}),  # a rejection needs reasons
        (ReviewDecided, {"decision": "approved"}),  # an approval has none
        (BillIssued, {"amount_fen": 170001}),  # not the sum of the items
        (BillIssued, {"period": "2025-13"}),
        (BillIssued, {"amount_fen": 1700.5}),  # never floats
        (BillIssued, {"items": []}),
        (PaymentSettled, {"payer_name_masked": None}),  # payer without a name
        (PaymentSettled, {"channel": "bank_counter"}),  # bank channel without the bank
        (PaymentSettled, {"amount_fen": 0}),
    ],
)
def test_validators_refuse_inconsistent_events(cls: type[Event], change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        cls.model_validate({**example(cls), **change})


def test_eligibility_is_enrollments_rule_not_the_contracts() -> None:
    """Contracts describe shapes (services/enrollment/rules.py owns who may apply with what):
    a submission the rules would refuse is still a well-formed event."""
    documents = [{**example(EnrollmentSubmitted)["documents"][0], "kind": "residence_permit"}]
    changes = {"pension_tier": None, "medical_tier": None, "household_region_code": "320102", "documents": documents}
    EnrollmentSubmitted.model_validate({**example(EnrollmentSubmitted), **changes})


# --- personal data (docs/personal-data.md) -----------------------------------------------------

_CLEAR_PERSONAL_FIELDS = {"phone", "name", "applicant_name", "birth_date", "id_number", "id_region_code"}


@pytest.mark.parametrize("cls", SUPERSEDED, ids=lambda c: f"{c.event_type}.v{c.schema_version}")
def test_superseded_versions_keep_their_committed_schema_exactly(cls: type[Event]) -> None:
    """Stored v1 events must still validate: the v1 classes are what was published, to the byte."""
    assert render(event_schema(cls)) == (CONTRACTS_DIR / schema_path(cls)).read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", PUBLIC_EVENTS, ids=lambda c: c.event_type)
def test_no_current_event_publishes_a_personal_field_in_clear(cls: type[Event]) -> None:
    def names(node: Any) -> set[str]:
        if isinstance(node, dict):
            own = set(node.get("properties", {}))
            return own | {n for value in node.values() for n in names(value)}
        if isinstance(node, list):
            return {n for item in node for n in names(item)}
        return set()

    assert names(event_schema(cls)) & _CLEAR_PERSONAL_FIELDS == set()


def test_upcasters_seal_v1_personal_fields_as_none_and_drop_the_region_code() -> None:
    registered = UserRegisteredV1.model_validate(example(UserRegisteredV1))
    verified = UserVerifiedV1.model_validate(example(UserVerifiedV1))
    submitted = EnrollmentSubmittedV1.model_validate(example(EnrollmentSubmittedV1))

    new_registered = decode(envelope_for(registered))
    assert isinstance(new_registered, UserRegistered)
    assert new_registered.phone_masked == "+86138****8000" and new_registered.role == "applicant"
    assert new_registered.personal == Sealed(key_id=registered.user_id, alg="none", data='{"phone":"+8613800138000"}')

    new_verified = decode(envelope_for(verified))
    assert isinstance(new_verified, UserVerified)
    assert "id_region_code" not in new_verified.payload()
    assert new_verified.personal.alg == "none" and new_verified.personal.key_id == verified.user_id
    assert json.loads(new_verified.personal.data) == {"name": "张三", "birth_date": "1990-03-07"}
    assert (new_verified.id_number_masked, new_verified.gender) == (verified.id_number_masked, verified.gender)

    new_submitted = decode(envelope_for(submitted))
    assert isinstance(new_submitted, EnrollmentSubmitted)
    assert new_submitted.personal.key_id == submitted.applicant_id
    assert json.loads(new_submitted.personal.data) == {
        "name": "张三",
        "birth_date": "1990-03-07",
        "phone": "+8613800138000",
    }
    kept = submitted.payload().keys() - {"applicant_name", "birth_date", "phone"}
    assert {k: new_submitted.payload()[k] for k in kept} == {k: submitted.payload()[k] for k in kept}


def test_person_erased_is_a_public_identity_event() -> None:
    assert PersonErased in PUBLIC_EVENTS and topic_of(PersonErased) == topics.IDENTITY_EVENTS
    assert set(PersonErased.model_fields) == {"user_id", "erased_at"}


@settings(max_examples=200)
@given(number=st.from_regex(r"[1-9]\d{16}[0-9X]|[1-9]\d{14}", fullmatch=True))
def test_a_masked_id_number_shows_at_most_its_first_four_and_last_four(number: str) -> None:
    masked = mask_id_number(number)
    assert len(masked) == len(number)
    assert masked[:4] == number[:4] and masked[-4:] == number[-4:]
    assert set(masked[4:-4]) == {"*"}


def test_what_identity_publishes_cannot_rebuild_an_id_number() -> None:
    """v1 published the region code (6), the birth date (8) and the last four: all 18 characters.
    v2 publishes, per person, only the masked number and the gender (which the 17th digit, in the
    last four, already shows); the birth date is sealed."""
    clear_fields = set(UserVerified.model_fields) - {"personal"}
    assert clear_fields == {"user_id", "id_number_masked", "gender", "provider", "verified_at"}
    submitted_clear = set(EnrollmentSubmitted.model_fields) - {"personal"}
    assert {"birth_date", "applicant_name", "phone", "id_region_code"} & submitted_clear == set()


# --- compatibility rules -----------------------------------------------------------------------


def compare(old: type[BaseModel], new: type[BaseModel]) -> list[str]:
    return breaking_changes(old.model_json_schema(), new.model_json_schema())


_TITLE = ConfigDict(title="UserVerified")


class _Document(BaseModel):
    model_config = ConfigDict(title="Document")
    kind: Literal["front", "back"]
    sha256: str


class _Base(BaseModel):
    model_config = _TITLE
    user_id: UUID
    birth_date: date
    tier: int | None = Field(ge=1, le=5)
    gender: Literal["male", "female"]
    medical: Literal[5] | None
    bank: str | None
    documents: list[_Document]
    code: str = Field(pattern=r"^\d{6}$")


def test_identical_schemas_have_no_breaking_changes() -> None:
    assert compare(_Base, _Base) == []
    for cls in PUBLIC_EVENTS:
        assert breaking_changes(event_schema(cls), event_schema(cls)) == []


def test_type_change_is_breaking() -> None:
    class New(_Base):
        birth_date: int  # type: ignore[assignment]

    assert compare(_Base, New) == ["UserVerified.birth_date: type changed string/date -> integer"]


def test_removed_field_is_breaking_and_rename_is_removal() -> None:
    class Removed(BaseModel):
        model_config = _TITLE
        user_id: UUID

    breaks = compare(_Base, Removed)
    assert "UserVerified.birth_date: field removed (or renamed)" in breaks
    assert len(breaks) == 7

    class Renamed(_Base):
        pass

    schema = Renamed.model_json_schema()
    schema["properties"]["date_of_birth"] = schema["properties"].pop("birth_date")
    schema["required"] = [("date_of_birth" if r == "birth_date" else r) for r in schema["required"]]
    assert breaking_changes(_Base.model_json_schema(), schema) == [
        "UserVerified.birth_date: field removed (or renamed)",
        "UserVerified.date_of_birth: new required field (stored events lack it)",
    ]


def test_optional_made_required_and_new_required_field_are_breaking() -> None:
    class Old(BaseModel):
        model_config = _TITLE
        nickname: str | None = None

    class New(BaseModel):
        model_config = _TITLE
        nickname: str | None
        nationality: str

    assert compare(Old, New) == [
        "UserVerified.nickname: optional field made required",
        "UserVerified.nationality: new required field (stored events lack it)",
    ]


def test_new_optional_field_and_required_made_optional_are_allowed() -> None:
    class New(_Base):
        nickname: str | None = None
        user_id: UUID = UUID(int=0)

    assert compare(_Base, New) == []


def test_null_added_to_a_required_field_is_breaking() -> None:
    class New(_Base):
        birth_date: date | None  # type: ignore[assignment]

    assert compare(_Base, New) == ["UserVerified.birth_date: null is now allowed (consumers may not expect null)"]


def test_null_removed_is_breaking_for_stored_history() -> None:
    class New(_Base):
        bank: str

    assert compare(_Base, New) == [
        "UserVerified.bank: null is no longer allowed (events stored with null would fail to validate)"
    ]


def test_enum_value_added_is_allowed_and_removed_is_breaking() -> None:
    class Added(_Base):
        gender: Literal["male", "female", "unknown"]  # type: ignore[assignment]
        medical: Literal[4, 5] | None  # type: ignore[assignment]

    assert compare(_Base, Added) == []

    class Removed(_Base):
        gender: Literal["male"]

    assert compare(_Base, Removed) == ['UserVerified.gender: enum value(s) removed: "female"']

    class Free(_Base):
        gender: str  # type: ignore[assignment]

    assert compare(_Base, Free) == []
    assert compare(Free, _Base) == ['UserVerified.gender: values restricted to "female", "male"']


def test_nested_models_and_arrays_are_compared() -> None:
    class Document(BaseModel):
        model_config = ConfigDict(title="Document")
        kind: Literal["front"]
        size: int

    class New(_Base):
        documents: list[Document]  # type: ignore[assignment]

    assert compare(_Base, New) == [
        'UserVerified.documents[].kind: enum value(s) removed: "back"',
        "UserVerified.documents[].sha256: field removed (or renamed)",
        "UserVerified.documents[].size: new required field (stored events lack it)",
    ]

    class Scalars(_Base):
        documents: list[str]  # type: ignore[assignment]

    assert compare(_Base, Scalars) == ["UserVerified.documents[]: type changed object -> string"]


def test_tightened_constraints_are_breaking_and_loosened_ones_are_not() -> None:
    class Tighter(_Base):
        tier: int | None = Field(ge=2, le=5)
        code: str = Field(pattern=r"^\d{4}$")

    assert compare(_Base, Tighter) == [
        "UserVerified.tier: minimum raised 1 -> 2",
        "UserVerified.code: pattern changed '^\\\\d{6}$' -> '^\\\\d{4}$'",
    ]

    class Looser(_Base):
        tier: int | None = Field(ge=0, le=9)
        code: str

    assert compare(_Base, Looser) == []


def test_union_member_change_is_a_type_change() -> None:
    class New(_Base):
        code: str | int  # type: ignore[assignment]

    assert compare(_Base, New) == ["UserVerified.code: type changed string -> integer|string"]


@settings(max_examples=40)
@given(cls=st.sampled_from(PUBLIC_EVENTS), data=st.data())
def test_any_removed_field_of_a_real_event_is_breaking(cls: type[Event], data: st.DataObject) -> None:
    schema = event_schema(cls)
    name = data.draw(st.sampled_from(sorted(schema["properties"])))
    new = json.loads(json.dumps(schema))
    del new["properties"][name]
    new["required"] = [r for r in new["required"] if r != name]
    assert f"{cls.event_type}.{name}: field removed (or renamed)" in breaking_changes(schema, new)


@settings(max_examples=40)
@given(cls=st.sampled_from(PUBLIC_EVENTS), name=st.from_regex(r"[a-z][a-z_]{0,20}", fullmatch=True))
def test_a_new_optional_field_never_breaks_a_real_event(cls: type[Event], name: str) -> None:
    schema = event_schema(cls)
    new = json.loads(json.dumps(schema))
    if name in new["properties"]:
        return
    new["properties"][name] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert breaking_changes(schema, new) == []


# --- the generator -----------------------------------------------------------------------------


def test_generate_writes_everything_then_check_passes(tmp_path: Path) -> None:
    assert main(["--check", "--root", str(tmp_path)]) == 1
    outcome = generate(tmp_path)
    assert not outcome.refused
    assert (tmp_path / "schemas" / "envelope.json").is_file()
    assert (tmp_path / "asyncapi.json").is_file()
    assert check(tmp_path) == []
    assert main(["--check", "--root", str(tmp_path)]) == 0
    assert generate(tmp_path).written == []


def test_generate_refuses_a_breaking_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path)
    path = tmp_path / schema_path(UserVerified)
    old = json.loads(path.read_text(encoding="utf-8"))
    old["properties"]["legacy_code"] = {"type": "string"}  # as if the current model dropped it
    tampered = json.dumps(old)
    path.write_text(tampered, encoding="utf-8")
    asyncapi = tmp_path / "asyncapi.json"
    asyncapi.write_text("{}", encoding="utf-8")

    outcome = generate(tmp_path)
    assert outcome.written == []
    assert any("UserVerified.legacy_code: field removed (or renamed)" in line for line in outcome.refused)
    assert any("schema_version" in line and "upcaster" in line for line in outcome.refused)
    assert path.read_text(encoding="utf-8") == tampered
    assert asyncapi.read_text(encoding="utf-8") == "{}"  # nothing at all is written

    assert main(["--root", str(tmp_path)]) == 1
    assert "legacy_code" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), "--force"]) == 0
    assert check(tmp_path) == []


def test_generate_overwrites_a_compatible_change_only(tmp_path: Path) -> None:
    generate(tmp_path)
    path = tmp_path / schema_path(UserVerified)
    reworded = committed(schema_path(UserVerified))
    reworded["description"] = "older wording"
    path.write_text(json.dumps(reworded), encoding="utf-8")
    outcome = generate(tmp_path)
    assert outcome.refused == []
    assert outcome.written == [str(Path(os.path.relpath(path)))]

    without_provider = committed(schema_path(UserVerified))
    del without_provider["properties"]["provider"]
    without_provider["required"].remove("provider")
    path.write_text(json.dumps(without_provider), encoding="utf-8")
    outcome = generate(tmp_path)
    assert any("UserVerified.provider: new required field" in line for line in outcome.refused)


def test_check_reports_stale_and_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path)
    (tmp_path / schema_path(PaymentSettled)).unlink()
    (tmp_path / "schemas" / "envelope.json").write_text("{}\n", encoding="utf-8")
    problems = check(tmp_path)
    assert any(p.startswith("missing:") and "PaymentSettled.v1.json" in p for p in problems)
    assert any(p.startswith("stale:") and "envelope.json" in p for p in problems)
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert "PaymentSettled.v1.json" in capsys.readouterr().err


def test_check_reports_removed_events_and_missing_upcasters(tmp_path: Path) -> None:
    generate(tmp_path)
    schemas = tmp_path / "schemas"
    (schemas / "GoneEvent.v1.json").write_text("{}\n", encoding="utf-8")
    (schemas / "UserVerified.v3.json").write_text("{}\n", encoding="utf-8")
    problems = check(tmp_path)
    assert any(p.startswith("removed:") and "GoneEvent.v1.json" in p for p in problems)
    assert any(p.startswith("removed:") and "UserVerified.v3.json" in p for p in problems)
    (schemas / "UserVerified.v3.json").unlink()
    (schemas / "UserVerified.v0.json").write_text("{}\n", encoding="utf-8")
    assert "no upcaster: UserVerified v0 -> v1 (stored events of the old version could not be decoded)" in check(
        tmp_path
    )


# --- upcasting ---------------------------------------------------------------------------------


class _ThrowawayV1(Event):
    event_type: ClassVar[str] = "ContractsTestThrowaway"
    schema_version: ClassVar[int] = 1
    public: ClassVar[bool] = False
    amount_yuan: int


class _ThrowawayV2(Event):
    event_type: ClassVar[str] = "ContractsTestThrowaway"
    schema_version: ClassVar[int] = 2
    public: ClassVar[bool] = False
    amount_fen: int
    note: str | None = None


class _ThrowawayV3(Event):
    event_type: ClassVar[str] = "ContractsTestThrowaway"
    schema_version: ClassVar[int] = 3
    public: ClassVar[bool] = False
    amount_fen: int
    note: str


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    amount = data.pop("amount_yuan")
    data["amount_fen"] = amount * 100
    return data


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "note": data.get("note") or "migrated"}


register_upcaster("ContractsTestThrowaway", 1, _v1_to_v2)
register_upcaster("ContractsTestThrowaway", 2, _v2_to_v3)


class _GappyV1(Event):
    event_type: ClassVar[str] = "ContractsTestGappy"
    public: ClassVar[bool] = False
    n: int


class _GappyV2(Event):
    event_type: ClassVar[str] = "ContractsTestGappy"
    schema_version: ClassVar[int] = 2
    public: ClassVar[bool] = False
    m: int


def test_upcast_applies_every_step_to_the_newest_version() -> None:
    envelope = envelope_for(_ThrowawayV1(amount_yuan=12))
    upcasted = upcast(envelope)
    assert upcasted.schema_version == 3
    assert upcasted.data == {"amount_fen": 1200, "note": "migrated"}
    assert envelope.data == {"amount_yuan": 12}  # the original is left alone
    assert upcasted.event_id == envelope.event_id
    assert decode(envelope) == _ThrowawayV3(amount_fen=1200, note="migrated")
    assert decode(envelope_for(_ThrowawayV2(amount_fen=5, note="kept"))) == _ThrowawayV3(amount_fen=5, note="kept")
    current = envelope_for(_ThrowawayV3(amount_fen=7, note="n"))
    assert upcast(current) is current


def test_upcasting_failures_are_explicit() -> None:
    assert not has_upcaster("ContractsTestGappy", 1)
    with pytest.raises(MissingUpcasterError):
        decode(envelope_for(_GappyV1(n=1)))
    unknown = envelope_for(_GappyV2(m=1)).model_copy(update={"event_type": "NoSuchEvent"})
    with pytest.raises(UnknownEventError):
        decode(unknown)
    from_the_future = envelope_for(_GappyV2(m=1)).model_copy(update={"schema_version": 9})
    with pytest.raises(UnknownEventError):
        decode(from_the_future)
    with pytest.raises(ValueError, match="already registered"):
        register_upcaster("ContractsTestThrowaway", 1, _v2_to_v3)
