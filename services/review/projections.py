"""The case queue (table `cases`): written from the case's events in their own transaction.

Idempotent: opening inserts at most one row per (application, attempt); a decision only moves
a pending row, so replaying either event again changes nothing.

The applicant's name, birth date and masked phone are kept for the reviewer until `PersonErased`
blanks them in every case of that person (docs/personal-data.md); the case and its decision stay.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Literal
from uuid import UUID

import asyncpg

from contracts.events.enrollment import EnrollmentSubmitted
from contracts.events.review import ReviewCaseOpened, ReviewDecided
from kernel.db import Connection, Executor
from services.review.domain import ApplicantData

StatusFilter = Literal["pending", "decided", "all"]


@dataclass(frozen=True)
class CaseQuery:
    """Which cases a list shows; None: any."""

    status: StatusFilter = "pending"
    agency_code: str | None = None
    application_id: UUID | None = None

    def limited_to(self, agency_code: str) -> "CaseQuery":
        return replace(self, agency_code=agency_code)


_INSERT = """
INSERT INTO cases (case_id, application_id, attempt, applicant_id, agency_code, due_on, opened_at,
                   submitted_at, applicant_name, id_number_masked, gender, birth_date, phone_masked,
                   household_kind, household_region_code, residence_district_code, pension_tier,
                   medical_tier, documents, personal_data_erased_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT DO NOTHING
RETURNING case_id
"""

# Pending: earliest due first, so overdue cases lead and the next deadline follows; ties go to
# whoever submitted first. (The "newest-due first" would bury the late ones at the end
# of the list; a reviewer works the deadline that bites first.) Decided: latest decision first,
# for an operator checking what was just done.
_ORDER = {
    "pending": "due_on, submitted_at, case_id",
    "decided": "decided_at DESC, case_id",
    "all": "status DESC, due_on, submitted_at, case_id",  # DESC: pending before decided
}


async def open_case(
    conn: Connection, opened: ReviewCaseOpened, submitted: EnrollmentSubmitted, applicant: ApplicantData | None
) -> bool:
    """Add the case to the queue; False when this submission already has its case.

    `applicant` None: the sealed data has no key any more (the person was erased); an erased
    person's data is not kept even when it could be read (a v1 submission, published in clear)."""
    documents = [{"kind": d.kind, "content_type": d.content_type, "sha256": d.sha256} for d in submitted.documents]
    erased = await erased_at(conn, opened.applicant_id)
    if erased is None and applicant is None:
        erased = opened.opened_at
    shown = applicant if erased is None else None
    inserted = await conn.fetchval(
        _INSERT,
        opened.case_id,
        opened.application_id,
        opened.attempt,
        opened.applicant_id,
        opened.agency_code,
        opened.due_on,
        opened.opened_at,
        submitted.submitted_at,
        shown.name if shown else None,
        submitted.id_number_masked,
        submitted.gender,
        shown.birth_date if shown else None,
        shown.phone_masked if shown else None,
        submitted.household_kind,
        submitted.household_region_code,
        submitted.residence_district_code,
        submitted.pension_tier,
        submitted.medical_tier,
        documents,
        erased,
    )
    return inserted is not None


async def erased_at(conn: Executor, user_id: UUID) -> datetime | None:
    found: datetime | None = await conn.fetchval("SELECT erased_at FROM erased_people WHERE user_id = $1", user_id)
    return found


async def erase_applicant(conn: Connection, user_id: UUID, now: datetime) -> int:
    """Blank the person's name, birth date and phone in every case of theirs; returns how many."""
    await conn.execute(
        "INSERT INTO erased_people (user_id, erased_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING", user_id, now
    )
    status = await conn.execute(
        "UPDATE cases SET applicant_name = NULL, birth_date = NULL, phone_masked = NULL, "
        "personal_data_erased_at = coalesce(personal_data_erased_at, $2) WHERE applicant_id = $1",
        user_id,
        now,
    )
    return int(status.split()[-1])


async def record_decision(conn: Connection, decided: ReviewDecided) -> None:
    await conn.execute(
        "UPDATE cases SET status = 'decided', decision = $2, reasons = $3, reviewer_id = $4, decided_at = $5 "
        "WHERE case_id = $1 AND status = 'pending'",
        decided.case_id,
        decided.decision,
        [r.model_dump() for r in decided.reasons],
        decided.reviewer_id,
        decided.decided_at,
    )


async def list_cases(db: Executor, query: CaseQuery, limit: int, offset: int) -> list[asyncpg.Record]:
    # Only fixed texts are spliced in (status is a Literal, the order from _ORDER); values are bound.
    status = "" if query.status == "all" else f" AND status = '{query.status}'"
    return await db.fetch(
        "SELECT * FROM cases WHERE ($1::text IS NULL OR agency_code = $1) "
        f"AND ($2::uuid IS NULL OR application_id = $2){status} "
        f"ORDER BY {_ORDER[query.status]} LIMIT $3 OFFSET $4",
        query.agency_code,
        query.application_id,
        limit,
        offset,
    )


async def get_case(db: Executor, case_id: UUID) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)


async def queue_counts(db: Executor, today: date) -> dict[str, tuple[int, int]]:
    """Per agency: (pending, overdue) cases; overdue means due before `today`."""
    rows = await db.fetch(
        "SELECT agency_code, count(*) AS pending, count(*) FILTER (WHERE due_on < $1) AS overdue "
        "FROM cases WHERE status = 'pending' GROUP BY agency_code",
        today,
    )
    return {r["agency_code"]: (r["pending"], r["overdue"]) for r in rows}
