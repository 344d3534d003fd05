"""What reviewers and operators read about a case (response models and their assembly)."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, Field

from services.review import domain
from services.review.agencies import AgencyDirectory


class AgencyView(BaseModel):
    code: str
    name: str


class ApplicantFacts(BaseModel):
    """The submission as the applicant declared it, to check against the documents."""

    applicant_id: UUID
    name: str
    id_number_masked: str
    gender: str
    birth_date: date
    age_at_submission: int = Field(description="Full years (周岁) on the submission day, Asia/Shanghai.")
    phone_masked: str
    household_kind: str
    household_region_code: str
    residence_district_code: str
    pension_tier: int | None
    medical_tier: int | None


class DocumentLink(BaseModel):
    kind: str
    content_type: str
    sha256: str = Field(description="Of the file as submitted: a re-upload would not match.")
    url: str


class ReasonView(BaseModel):
    code: str
    text: str


class CaseView(BaseModel):
    case_id: UUID
    application_id: UUID
    attempt: int
    status: str
    agency: AgencyView
    submitted_at: datetime
    opened_at: datetime
    due_on: date
    overdue: bool
    applicant: ApplicantFacts
    documents: list[DocumentLink]
    decision: str | None = None
    reasons: list[ReasonView] = []
    reviewer_id: UUID | None = None
    decided_at: datetime | None = None


class CaseList(BaseModel):
    status: str
    agency: str | None
    today: date = Field(description="The day (Asia/Shanghai) against which `overdue` was judged.")
    cases: list[CaseView]


def case_view(row: asyncpg.Record, agencies: AgencyDirectory, enrollment_url: str, today: date) -> CaseView:
    agency = agencies.get(row["agency_code"])
    return CaseView(
        case_id=row["case_id"],
        application_id=row["application_id"],
        attempt=row["attempt"],
        status=row["status"],
        # An agency removed from the file still shows its code, so old cases stay readable.
        agency=AgencyView(code=row["agency_code"], name=agency.name if agency else row["agency_code"]),
        submitted_at=row["submitted_at"],
        opened_at=row["opened_at"],
        due_on=row["due_on"],
        overdue=domain.is_overdue(row["due_on"], row["status"] == "decided", today),
        applicant=_applicant(row),
        documents=[_document(d, row["application_id"], enrollment_url) for d in row["documents"]],
        decision=row["decision"],
        reasons=[ReasonView(**r) for r in row["reasons"]],
        reviewer_id=row["reviewer_id"],
        decided_at=row["decided_at"],
    )


def _applicant(row: asyncpg.Record) -> ApplicantFacts:
    return ApplicantFacts(
        applicant_id=row["applicant_id"],
        name=row["applicant_name"],
        id_number_masked=row["id_number_masked"],
        gender=row["gender"],
        birth_date=row["birth_date"],
        age_at_submission=domain.age_on(row["birth_date"], domain.local_date(row["submitted_at"])),
        phone_masked=row["phone_masked"],
        household_kind=row["household_kind"],
        household_region_code=row["household_region_code"],
        residence_district_code=row["residence_district_code"],
        pension_tier=row["pension_tier"],
        medical_tier=row["medical_tier"],
    )


def _document(document: dict[str, Any], application_id: UUID, enrollment_url: str) -> DocumentLink:
    url = f"{enrollment_url.rstrip('/')}/v1/applications/{application_id}/documents/{document['kind']}"
    return DocumentLink(
        kind=document["kind"], content_type=document["content_type"], sha256=document["sha256"], url=url
    )
