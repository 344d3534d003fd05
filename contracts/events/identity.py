"""Events of the identity service (topic `identity.events`, key = user_id): accounts and
real-name verification.
"""

from datetime import date
from typing import Literal, Self
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from contracts.events.base import (
    Event,
    Gender,
    MainlandMobile,
    MaskedIdNumber,
    NonEmptyStr,
    RegionCode,
    UtcDatetime,
    check_masked_id,
)

Role = Literal["applicant", "reviewer", "operator"]


class UserRegistered(Event):
    """A person registered an account.

    Guide, PART-2: "首次登录人员必须进行“用户注册”。" (first-time users must register). The phone
    number is carried in full because notify needs it to text the person; never log it unmasked.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "phone": "+8613800138000",
                    "role": "applicant",
                    "registered_at": "2025-03-02T01:15:00Z",
                }
            ]
        }
    )

    user_id: UUID = Field(description="Identifier of the new account; the stream key.")
    phone: MainlandMobile = Field(
        description="Mainland mobile number in E.164 form, e.g. +8613800138000. Full number: "
        "notify texts it. Personal data: mask it in logs."
    )
    role: Role = Field(
        description="applicant (a flexible-employment worker), reviewer (agency staff) or operator (runs the system)."
    )
    registered_at: UtcDatetime = Field(description="When the account was created (UTC).")


class UserVerified(Event):
    """The account holder passed real-name verification (实名认证).

    Guide, Q4: "需办理个人账户注册和实名认证手续。" (an account and real-name verification are
    needed before applying); the channels check "姓名、手机号码以及身份证号码" and do a face check
    ("人脸核验"). Birth date and gender are derived from the verified resident ID number
    (GB 11643); the full number never leaves the identity service.
    """

    model_config = ConfigDict(
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
        }
    )

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


EVENTS: tuple[type[Event], ...] = (UserRegistered, UserVerified)
