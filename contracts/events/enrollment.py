"""Events of the enrollment service (topic `enrollment.events`, key = application_id): one
application for flexible-employment enrolment (参保登记), from the notice to submission,
review outcome and the labour-affairs agency notice read after approval.
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
    MedicalTier,
    NonEmptyStr,
    PensionTier,
    RegionCode,
    Sealed,
    Sha256Hex,
    UtcDatetime,
    check_masked_id,
    clear_as_sealed,
)
from contracts.events.review import ReviewReason
from contracts.upcasting import upcaster

HouseholdKind = Literal["changzhou", "jiangsu_resident"]
DocumentKind = Literal["id_card_front", "id_card_back", "hukou_first_page", "hukou_own_page", "residence_permit"]

_EXAMPLE_APPLICATION = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_EXAMPLE_APPLICANT = "0f8fad5b-d9cb-469f-a165-70867728950e"
_EXAMPLE_CASE = "9b2f1c1e-3c55-4c7e-8e57-2a0a4f2d5b61"
_EXAMPLE_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


_PENSION_DESCRIPTION = "Pension insurance (养老保险) tier 1-5 (一档…五档); null = 无 (not enrolled)."
_MEDICAL_DESCRIPTION = "Medical insurance (医疗保险) tier: only 5; null = 无 (not enrolled)."
_HOUSEHOLD_KIND_DESCRIPTION = (
    "changzhou: household registered in Changzhou; jiangsu_resident: household registered "
    "elsewhere in Jiangsu, living in Changzhou."
)
_HOUSEHOLD_REGION_DESCRIPTION = "Administrative code of the household registration (户籍)."
_RESIDENCE_DESCRIPTION = "Administrative code of the Changzhou district of residence."


class NoticeAccepted(Event):
    """The applicant read and agreed to the enrolment notice; this opens the application.

    Guide, PART-4: "阅读“灵活就业人员参保登须知”（请务必仔细阅读），点击“同意”。"
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "notice_version": "2020-12",
                    "accepted_at": "2025-03-02T01:25:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    notice_version: NonEmptyStr = Field(description="Version of the notice (参保登记须知) the applicant agreed to.")
    accepted_at: UtcDatetime = Field(description="When the applicant clicked 同意 (UTC).")


class ApplicationDrafted(Event):
    """The applicant chose insurances, tiers and household situation (a draft; can be redone).

    Guide, PART-5: "“养老保险”有五档……如不选择参加养老保险请点击“无”。“医疗保险”仅有第五档，如不
    选择参加医疗保险请点击“无”。"
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "pension_tier": 3,
                    "medical_tier": 5,
                    "household_kind": "changzhou",
                    "household_region_code": "320402",
                    "residence_district_code": "320411",
                    "drafted_at": "2025-03-02T01:27:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    pension_tier: PensionTier | None = Field(description=_PENSION_DESCRIPTION)
    medical_tier: MedicalTier | None = Field(description=_MEDICAL_DESCRIPTION)
    household_kind: HouseholdKind = Field(description=_HOUSEHOLD_KIND_DESCRIPTION)
    household_region_code: RegionCode = Field(description=_HOUSEHOLD_REGION_DESCRIPTION)
    residence_district_code: RegionCode = Field(description=_RESIDENCE_DESCRIPTION)
    drafted_at: UtcDatetime = Field(description="When the choices were saved (UTC).")


class DocumentUploaded(Event):
    """A supporting document was stored for the application (a later upload of the same kind
    replaces the earlier one).

    Guide, PART-6: "上传身份证（正、反面）、户口簿（首页和本人信息所在页）或居住证资料".
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "kind": "id_card_front",
                    "sha256": _EXAMPLE_SHA,
                    "content_type": "image/jpeg",
                    "size_bytes": 482113,
                    "blob_ref": "blobs/7c9e6679-7425-40de-944b-e07fc1f90ae7/id_card_front",
                    "uploaded_at": "2025-03-02T01:30:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    kind: DocumentKind = Field(
        description="Which document: ID card front/back, household register first page / own page, or residence permit."
    )
    sha256: Sha256Hex = Field(description="SHA-256 of the stored bytes, lowercase hex.")
    content_type: NonEmptyStr = Field(description="Media type of the file, e.g. image/jpeg.")
    size_bytes: int = Field(ge=1, description="Size of the file in bytes.")
    blob_ref: NonEmptyStr = Field(description="Where the enrollment service stored the file; opaque to other services.")
    uploaded_at: UtcDatetime = Field(description="When the upload completed (UTC).")


class SubmittedDocument(BaseModel):
    """One document as it stood when the application was submitted."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: DocumentKind = Field(description="Which document.")
    sha256: Sha256Hex = Field(description="SHA-256 of the stored bytes, lowercase hex.")
    blob_ref: NonEmptyStr = Field(description="Where the enrollment service stored the file.")
    content_type: NonEmptyStr = Field(description="Media type of the file, e.g. image/jpeg.")


class EnrollmentSubmittedV1(Event):
    """The applicant checked the application and submitted it for review (提交申报).

    Guide, PART-7: "查看核对申请信息确认后，点击“提交申报”，参保登记申请即完成。" A rejected
    application may be corrected and submitted again: `attempt` counts submissions. The event is
    self-contained so the reviewer needs no other service's data.
    """

    model_config = ConfigDict(
        title="EnrollmentSubmitted",
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "applicant_name": "张三",
                    "id_number_masked": "3204**********1234",
                    "birth_date": "1990-03-07",
                    "gender": "male",
                    "phone": "+8613800138000",
                    "pension_tier": 3,
                    "medical_tier": 5,
                    "household_kind": "changzhou",
                    "household_region_code": "320402",
                    "residence_district_code": "320411",
                    "documents": [
                        {
                            "kind": kind,
                            "sha256": _EXAMPLE_SHA,
                            "blob_ref": f"blobs/{_EXAMPLE_APPLICATION}/{kind}",
                            "content_type": "image/jpeg",
                        }
                        for kind in (
                            "id_card_front",
                            "id_card_back",
                            "hukou_first_page",
                            "hukou_own_page",
                        )
                    ],
                    "notice_version": "2020-12",
                    "submitted_at": "2025-03-02T01:40:00Z",
                }
            ]
        },
    )

    # Superseded by v2 and no longer published; kept so that stored events of v1 decode.
    event_type: ClassVar[str] = "EnrollmentSubmitted"

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="1 for the first submission, +1 per resubmission.")
    applicant_name: NonEmptyStr = Field(description="Verified legal name of the applicant.")
    id_number_masked: MaskedIdNumber = Field(
        description="Applicant's resident ID number, first four and last four characters only."
    )
    birth_date: date = Field(description="Birth date from the verified ID number.")
    gender: Gender = Field(description="Gender from the verified ID number.")
    phone: MainlandMobile = Field(
        description="Applicant's mobile number, E.164, for the reviewer to call. Personal data: mask it in logs."
    )
    pension_tier: PensionTier | None = Field(description=_PENSION_DESCRIPTION)
    medical_tier: MedicalTier | None = Field(description=_MEDICAL_DESCRIPTION)
    household_kind: HouseholdKind = Field(description=_HOUSEHOLD_KIND_DESCRIPTION)
    household_region_code: RegionCode = Field(description=_HOUSEHOLD_REGION_DESCRIPTION)
    residence_district_code: RegionCode = Field(description=_RESIDENCE_DESCRIPTION)
    documents: list[SubmittedDocument] = Field(
        description="The documents submitted: ID card front and back, plus household register "
        "first and own page or residence permit; one per kind."
    )
    notice_version: NonEmptyStr = Field(description="Version of the notice the applicant accepted.")
    submitted_at: UtcDatetime = Field(description="When the applicant clicked 提交申报 (UTC).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        # A shape fact: gender and masked number come from one ID number. Eligibility (tiers,
        # household, documents) is enrollment's rule (services/enrollment/rules.py), not the shape's.
        check_masked_id(self.id_number_masked, self.gender)
        return self


class SubmittedPersonal(BaseModel):
    """What `EnrollmentSubmitted.personal` seals."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: NonEmptyStr = Field(description="Verified legal name of the applicant.")
    birth_date: date = Field(description="Birth date from the verified ID number.")
    phone: MainlandMobile = Field(description="Applicant's mobile number, E.164, for the reviewer to call.")


class EnrollmentSubmitted(Event):
    """The applicant checked the application and submitted it for review (提交申报).

    Guide, PART-7: "查看核对申请信息确认后，点击“提交申报”，参保登记申请即完成。" A rejected
    application may be corrected and submitted again: `attempt` counts submissions. The event is
    self-contained so the reviewer needs no other service's data: the applicant's name, birth
    date and phone are sealed under the applicant's key (docs/personal-data.md); review opens them.
    """

    schema_version: ClassVar[int] = 2

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "id_number_masked": "3204**********1234",
                    "gender": "male",
                    "personal": {
                        # sealed under the example key bytes(range(32)), see contracts/events/identity.py
                        "key_id": _EXAMPLE_APPLICANT,
                        "alg": "A256GCM",
                        "nonce": "AwMDAwMDAwMDAwMD",
                        "data": "lWlev3nmOkm6PHIb75B2NiNvxt3qyxGBtZ9qP2pDxDe5OR47GSeTXcGJaCwbI1J0lvRN"
                        "joCacJsNxXwhttzEanf6ptWQgstlFothDrAlqGNc9/cQ",
                    },
                    "pension_tier": 3,
                    "medical_tier": 5,
                    "household_kind": "changzhou",
                    "household_region_code": "320402",
                    "residence_district_code": "320411",
                    "documents": [
                        {
                            "kind": kind,
                            "sha256": _EXAMPLE_SHA,
                            "blob_ref": f"blobs/{_EXAMPLE_APPLICATION}/{kind}",
                            "content_type": "image/jpeg",
                        }
                        for kind in (
                            "id_card_front",
                            "id_card_back",
                            "hukou_first_page",
                            "hukou_own_page",
                        )
                    ],
                    "notice_version": "2020-12",
                    "submitted_at": "2025-03-02T01:40:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="1 for the first submission, +1 per resubmission.")
    id_number_masked: MaskedIdNumber = Field(
        description="Applicant's resident ID number, first four and last four characters only."
    )
    gender: Gender = Field(description="Gender from the verified ID number.")
    personal: Sealed = Field(
        description="Sealed under the applicant's key: {name, birth_date, phone} (the verified legal name, the "
        "birth date from the ID number, the mobile number in E.164 for the reviewer to call). Opaque to "
        "downstream teams; unreadable once the applicant is erased."
    )
    pension_tier: PensionTier | None = Field(description=_PENSION_DESCRIPTION)
    medical_tier: MedicalTier | None = Field(description=_MEDICAL_DESCRIPTION)
    household_kind: HouseholdKind = Field(description=_HOUSEHOLD_KIND_DESCRIPTION)
    household_region_code: RegionCode = Field(description=_HOUSEHOLD_REGION_DESCRIPTION)
    residence_district_code: RegionCode = Field(description=_RESIDENCE_DESCRIPTION)
    documents: list[SubmittedDocument] = Field(
        description="The documents submitted: ID card front and back, plus household register "
        "first and own page or residence permit; one per kind."
    )
    notice_version: NonEmptyStr = Field(description="Version of the notice the applicant accepted.")
    submitted_at: UtcDatetime = Field(description="When the applicant clicked 提交申报 (UTC).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        # A shape fact: gender and masked number come from one ID number. Eligibility (tiers,
        # household, documents) is enrollment's rule (services/enrollment/rules.py), not the shape's.
        check_masked_id(self.id_number_masked, self.gender)
        if self.personal.key_id != self.applicant_id:
            raise ValueError("personal data must be sealed under the applicant's key")
        return self


@upcaster("EnrollmentSubmitted", from_version=1)
def _enrollment_submitted_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    fields = {"name": data.pop("applicant_name"), "birth_date": data.pop("birth_date"), "phone": data.pop("phone")}
    return {**data, "personal": clear_as_sealed(data["applicant_id"], fields)}


class ApplicationUnderReview(Event):
    """The accepting agency opened a review case for the application's current submission.

    Recorded by enrollment on its own stream when it learns of `ReviewCaseOpened`, so that the
    application knows its agency (shown on the registration form) without asking review.
    Guide, PART-8: "受理机构会在1-2个工作日内……".
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "case_id": _EXAMPLE_CASE,
                    "agency_code": "320411",
                    "agency_name": "常州市新北区人力资源和社会保障局劳动就业管理中心",
                    "due_on": "2025-03-04",
                    "opened_at": "2025-03-02T01:40:05Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="Which submission the case reviews.")
    case_id: UUID = Field(description="The review case (review service).")
    agency_code: NonEmptyStr = Field(description="Code of the accepting agency (受理机构).")
    agency_name: str | None = Field(
        default=None, description="Name of the accepting agency in Chinese, when review gave it."
    )
    due_on: date = Field(description="Working day by which the decision is due.")
    opened_at: UtcDatetime = Field(description="When the case was opened (UTC).")


class ApplicationApproved(Event):
    """The reviewer approved the application's current submission (审核通过).

    Recorded by enrollment when it learns of `ReviewDecided` for the attempt it last submitted;
    a decision about an older attempt is ignored. Guide, PART-8: after approval the applicant
    may print 《常州市劳动事务代理申请登记表》.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "case_id": _EXAMPLE_CASE,
                    "decided_at": "2025-03-03T02:00:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="The submission that was approved.")
    case_id: UUID = Field(description="The review case that decided.")
    decided_at: UtcDatetime = Field(description="When the reviewer decided (UTC).")


class ApplicationRejected(Event):
    """The reviewer did not approve the application's current submission (审核不通过).

    The applicant may correct the application and submit again (guide, PART-8).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "case_id": _EXAMPLE_CASE,
                    "reasons": [{"code": "document_unreadable", "text": "身份证反面照片不清晰，请重新上传。"}],
                    "decided_at": "2025-03-03T02:00:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="The submission that was rejected.")
    case_id: UUID = Field(description="The review case that decided.")
    reasons: list[ReviewReason] = Field(
        min_length=1, description="Why, as the reviewer gave them (codes and Chinese text)."
    )
    decided_at: UtcDatetime = Field(description="When the reviewer decided (UTC).")


class AgencyNoticeAccepted(Event):
    """After approval, the applicant read and accepted the labour-affairs agency notice.

    Guide, PART-8: "审核通过后申请人须仔细阅读《劳动事务代理人员须知》，并可打印《常州市劳动事务代理
    申请登记表》。" The registration form can be printed only after this event; it is recorded
    once per application.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "notice_version": "2020-12",
                    "accepted_at": "2025-03-03T03:10:00Z",
                }
            ]
        }
    )

    application_id: UUID = Field(description="The application; the stream key.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    notice_version: NonEmptyStr = Field(
        description="Version of the labour-affairs agency notice (劳动事务代理人员须知) the applicant accepted."
    )
    accepted_at: UtcDatetime = Field(description="When the applicant accepted the notice (UTC).")


EVENTS: tuple[type[Event], ...] = (
    NoticeAccepted,
    ApplicationDrafted,
    DocumentUploaded,
    EnrollmentSubmitted,
    ApplicationUnderReview,
    ApplicationApproved,
    ApplicationRejected,
    AgencyNoticeAccepted,
)
