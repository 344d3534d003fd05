"""Events of the identity service (topic `identity.events`, key = user_id): accounts,
real-name verification and erasure.

Version 2 of `UserRegistered` and `UserVerified` seal the personal fields under the person's key
(docs/personal-data.md); version 1 stays registered so that stored history decodes, and its
upcaster marks the fields it published in clear as `alg: none`.
"""

from datetime import date
from typing import Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.events.base import (
    Event,
    Gender,
    MainlandMobile,
    MaskedIdNumber,
    MaskedPhone,
    NonEmptyStr,
    RegionCode,
    Sealed,
    UtcDatetime,
    check_masked_id,
    clear_as_sealed,
    mask_phone,
)
from contracts.upcasting import upcaster

Role = Literal["applicant", "reviewer", "operator"]


class UserRegisteredV1(Event):
    """A person registered an account.

    Guide, PART-2: "首次登录人员必须进行“用户注册”。" (first-time users must register). The phone
    number is carried in full because notify needs it to text the person; never log it unmasked.
    """

    model_config = ConfigDict(
        title="UserRegistered",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "phone": "+8613800138000",
                    "role": "applicant",
                    "registered_at": "2025-03-02T01:15:00Z",
                }
            ]
        },
    )

    # Superseded by v2 and no longer published; kept so that stored events of v1 decode.
    event_type: ClassVar[str] = "UserRegistered"

    user_id: UUID = Field(description="Identifier of the new account; the stream key.")
    phone: MainlandMobile = Field(
        description="Mainland mobile number in E.164 form, e.g. +8613800138000. Full number: "
        "notify texts it. Personal data: mask it in logs."
    )
    role: Role = Field(
        description="applicant (a flexible-employment worker), reviewer (agency staff) or operator (runs the system)."
    )
    registered_at: UtcDatetime = Field(description="When the account was created (UTC).")


class UserVerifiedV1(Event):
    """The account holder passed real-name verification (实名认证).

    Guide, Q4: "需办理个人账户注册和实名认证手续。" (an account and real-name verification are
    needed before applying); the channels check "姓名、手机号码以及身份证号码" and do a face check
    ("人脸核验"). Birth date and gender are derived from the verified resident ID number
    (GB 11643); the full number never leaves the identity service.
    """

    model_config = ConfigDict(
        title="UserVerified",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "name": "张三",
                    "id_number_masked": "3204**********1234",
                    "birth_date": "1990-03-07",
                    "gender": "male",
                    "id_region_code": "320402",
                    "provider": "local-stub",
                    "verified_at": "2025-03-02T01:20:00Z",
                }
            ]
        },
    )

    # Superseded by v2 and no longer published; kept so that stored events of v1 decode.
    event_type: ClassVar[str] = "UserVerified"

    user_id: UUID = Field(description="The verified account; the stream key.")
    name: NonEmptyStr = Field(description="Legal name as verified, e.g. 张三.")
    id_number_masked: MaskedIdNumber = Field(
        description="Resident ID number showing only its first four and last four characters, e.g. 3204**********1234."
    )
    birth_date: date = Field(description="Birth date, from positions 7-14 of the ID number.")
    gender: Gender = Field(description="From the ID number's 17th digit: odd = male.")
    id_region_code: RegionCode = Field(
        description="First six digits of the ID number: the region of first issue (not "
        "necessarily the current household registration)."
    )
    provider: NonEmptyStr = Field(
        description="Name of the verification provider that checked name, ID number and face."
    )
    verified_at: UtcDatetime = Field(description="When verification succeeded (UTC).")

    @model_validator(mode="after")
    def _consistent_with_id_number(self) -> Self:
        check_masked_id(self.id_number_masked, self.gender, self.id_region_code)
        return self


class RegisteredPersonal(BaseModel):
    """What `UserRegistered.personal` seals."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    phone: MainlandMobile = Field(description="Mainland mobile number in E.164 form; notify texts it.")


class VerifiedPersonal(BaseModel):
    """What `UserVerified.personal` seals: the facts of the ID number that identify the person."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: NonEmptyStr = Field(description="Legal name as verified, e.g. 张三.")
    birth_date: date = Field(description="Birth date, from positions 7-14 of the ID number.")


_EXAMPLE_USER = "0f8fad5b-d9cb-469f-a165-70867728950e"
# The examples' sealed values are real: sealed (kernel.personal.seal) under the example key
# bytes(range(32)), so a reader of the schemas can check how sealing works.


class UserRegistered(Event):
    """A person registered an account.

    Guide, PART-2: "首次登录人员必须进行“用户注册”。" (first-time users must register). The phone
    number is sealed under the person's key (docs/personal-data.md): notify opens it to text the
    person; everyone else sees the masked form only.
    """

    schema_version: ClassVar[int] = 2

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": _EXAMPLE_USER,
                    "role": "applicant",
                    "phone_masked": "+86138****8000",
                    "personal": {
                        "key_id": _EXAMPLE_USER,
                        "alg": "A256GCM",
                        "nonce": "AQEBAQEBAQEBAQEB",
                        "data": "DOGVXQfrDUTudkwgLlZh4Ptevuipsybs0aYd1roeI5CAhw5YhRySkSij",
                    },
                    "registered_at": "2025-03-02T01:15:00Z",
                }
            ]
        }
    )

    user_id: UUID = Field(description="Identifier of the new account; the stream key.")
    role: Role = Field(
        description="applicant (a flexible-employment worker), reviewer (agency staff) or operator (runs the system)."
    )
    phone_masked: MaskedPhone = Field(description="The mobile number with its middle four digits hidden.")
    personal: Sealed = Field(
        description="Sealed under the person's key: {phone} (E.164). Opaque to downstream teams; unreadable once "
        "the person is erased."
    )
    registered_at: UtcDatetime = Field(description="When the account was created (UTC).")

    @model_validator(mode="after")
    def _sealed_for_this_person(self) -> Self:
        _check_owner(self.personal, self.user_id)
        return self


class UserVerified(Event):
    """The account holder passed real-name verification (实名认证).

    Guide, Q4: "需办理个人账户注册和实名认证手续。" (an account and real-name verification are
    needed before applying); the channels check "姓名、手机号码以及身份证号码" and do a face check
    ("人脸核验"). Name and birth date are sealed under the person's key (docs/personal-data.md);
    the masked ID number shows its first four and last four characters only, and no region code
    is published any more (with the birth date it rebuilt the whole number).
    """

    schema_version: ClassVar[int] = 2

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": _EXAMPLE_USER,
                    "id_number_masked": "3204**********1234",
                    "gender": "male",
                    "provider": "local-stub",
                    "personal": {
                        "key_id": _EXAMPLE_USER,
                        "alg": "A256GCM",
                        "nonce": "AgICAgICAgICAgIC",
                        "data": "4Ap70sutWQSv5NadEUP4IiXQn0GkZ1XBdXz9IRkKJKfywvqHo5YXYFBI/2ucsC841YtTwbOKeyYPQds=",
                    },
                    "verified_at": "2025-03-02T01:20:00Z",
                }
            ]
        }
    )

    user_id: UUID = Field(description="The verified account; the stream key.")
    id_number_masked: MaskedIdNumber = Field(
        description="Resident ID number showing only its first four and last four characters, e.g. 3204**********1234."
    )
    gender: Gender = Field(description="From the ID number's 17th digit: odd = male.")
    provider: NonEmptyStr = Field(
        description="Name of the verification provider that checked name, ID number and face."
    )
    personal: Sealed = Field(
        description="Sealed under the person's key: {name, birth_date}. Opaque to downstream teams; unreadable "
        "once the person is erased."
    )
    verified_at: UtcDatetime = Field(description="When verification succeeded (UTC).")

    @model_validator(mode="after")
    def _consistent_with_id_number(self) -> Self:
        check_masked_id(self.id_number_masked, self.gender)
        _check_owner(self.personal, self.user_id)
        return self


class PersonErased(Event):
    """The person's personal data was erased (their right to deletion): their key, login and
    ID-number binding are gone, so every sealed copy of their data on every topic is unreadable.

    Every service that kept a clear copy of their personal data deletes it on this event; the
    history of their applications (submitted, decided, paid) stays (docs/personal-data.md,
    "Erasure").
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": _EXAMPLE_USER, "erased_at": "2026-11-27T02:00:00Z"}]}
    )

    user_id: UUID = Field(description="The erased account; the stream key.")
    erased_at: UtcDatetime = Field(description="When the erasure was done (UTC).")


class PhoneChanged(Event):
    """The account holder proved a new mobile number with a one-time code and made it the
    account's phone (services/identity/README.md, "Phone change"). The number is sealed like
    UserRegistered's: notify opens it and texts the new number from then on.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": _EXAMPLE_USER,
                    "phone_masked": "+86139****9000",
                    "personal": {
                        "key_id": _EXAMPLE_USER,
                        "alg": "A256GCM",
                        "nonce": "AwMDAwMDAwMDAwMD",
                        "data": "lWlMvmT8NzTkfy1G+5tnPipmx8PjyAyBoMA3HgtIxDuPZ/OEdpG+2DlR",
                    },
                    "changed_at": "2025-06-02T03:00:00Z",
                }
            ]
        }
    )

    user_id: UUID = Field(description="The account; the stream key.")
    phone_masked: MaskedPhone = Field(description="The new mobile number with its middle four digits hidden.")
    personal: Sealed = Field(
        description="Sealed under the person's key: {phone} (E.164), the new number. Opaque to downstream teams; "
        "unreadable once the person is erased."
    )
    changed_at: UtcDatetime = Field(description="When the phone was changed (UTC).")

    @model_validator(mode="after")
    def _sealed_for_this_person(self) -> Self:
        _check_owner(self.personal, self.user_id)
        return self


def _check_owner(personal: Sealed, user_id: UUID) -> None:
    if personal.key_id != user_id:
        raise ValueError("personal data must be sealed under the key of the event's own person")


@upcaster("UserRegistered", from_version=1)
def _user_registered_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    phone = data.pop("phone")
    return {**data, "phone_masked": mask_phone(phone), "personal": clear_as_sealed(data["user_id"], {"phone": phone})}


@upcaster("UserVerified", from_version=1)
def _user_verified_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("id_region_code", None)
    fields = {"name": data.pop("name"), "birth_date": data.pop("birth_date")}
    return {**data, "personal": clear_as_sealed(data["user_id"], fields)}


EVENTS: tuple[type[Event], ...] = (UserRegistered, UserVerified, PhoneChanged, PersonErased)
"""The current version of each identity event (older versions stay registered for replay)."""
