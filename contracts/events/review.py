"""Events of the review service (topic `review.events`, key = case_id): the accepting agency's
review of one submission.
"""

from datetime import date
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.events.base import Event, NonEmptyStr, UtcDatetime

Decision = Literal["approved", "rejected"]

_EXAMPLE_CASE = "9b2f1c1e-3c55-4c7e-8e57-2a0a4f2d5b61"
_EXAMPLE_APPLICATION = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_EXAMPLE_APPLICANT = "0f8fad5b-d9cb-469f-a165-70867728950e"


class ReviewCaseOpened(Event):
    """A submission was accepted for review by an agency, with its working-day deadline.

    Guide, PART-8: "受理机构会在1-2个工作日内发送短信告知“审核通过”或“审核不通过”信息。" One case
    per submission (`application_id`, `attempt`).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": _EXAMPLE_CASE,
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "agency_code": "320411",
                    "agency_name": "常州市新北区人力资源和社会保障局劳动就业管理中心",
                    "due_on": "2025-03-04",
                    "opened_at": "2025-03-02T01:40:05Z",
                }
            ]
        }
    )

    case_id: UUID = Field(description="The review case; the stream key.")
    application_id: UUID = Field(description="The application under review.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="Which submission of the application this case reviews.")
    agency_code: NonEmptyStr = Field(
        description="Code of the accepting agency (受理机构, the labour and employment office)."
    )
    agency_name: str | None = Field(
        default=None,
        description="Name of the accepting agency, in Chinese, as applicants read it (e.g. on the "
        "registration form). Optional: absent in cases opened before it was added.",
    )
    due_on: date = Field(
        description="Last working day (China Mainland calendar, holidays and make-up days "
        "counted) by which the decision is due."
    )
    opened_at: UtcDatetime = Field(description="When the case was opened (UTC).")


class ReviewReason(BaseModel):
    """Why a submission was not approved."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: NonEmptyStr = Field(
        description="Stable machine code from the review service's reason list, e.g. documents_unreadable."
    )
    text: NonEmptyStr = Field(description="Explanation for the applicant, in Chinese; sent by SMS.")


class ReviewDecided(Event):
    """The reviewer approved or rejected the submission.

    Guide, PART-8: the agency tells the applicant "审核通过" or "审核不通过"; a rejection carries
    its reasons, and the applicant may correct the application and submit again.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": _EXAMPLE_CASE,
                    "application_id": _EXAMPLE_APPLICATION,
                    "applicant_id": _EXAMPLE_APPLICANT,
                    "attempt": 1,
                    "decision": "rejected",
                    "reasons": [
                        {"code": "documents_unreadable", "text": "证件照片不清晰：身份证反面照片模糊，请重新上传。"}
                    ],
                    "reviewer_id": "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b",
                    "decided_at": "2025-03-03T02:00:00Z",
                }
            ]
        }
    )

    case_id: UUID = Field(description="The review case; the stream key.")
    application_id: UUID = Field(description="The application reviewed.")
    applicant_id: UUID = Field(description="user_id of the applicant.")
    attempt: int = Field(ge=1, description="Which submission of the application was decided.")
    decision: Decision = Field(description="approved (审核通过) or rejected (审核不通过).")
    reasons: list[ReviewReason] = Field(
        description="Why it was rejected: at least one when rejected, empty when approved."
    )
    reviewer_id: UUID = Field(description="user_id of the reviewer who decided.")
    decided_at: UtcDatetime = Field(description="When the decision was made (UTC).")

    @model_validator(mode="after")
    def _reasons_match_decision(self) -> Self:
        if self.decision == "approved" and self.reasons:
            raise ValueError("an approval carries no reasons")
        if self.decision == "rejected" and not self.reasons:
            raise ValueError("a rejection needs at least one reason")
        return self


EVENTS: tuple[type[Event], ...] = (ReviewCaseOpened, ReviewDecided)
