"""Aggregate reads of the case queue (table `cases`) for the operators' dashboard (issue 12).

Only counts leave this module: no applicant, no case id. Days are calendar days of Changzhou
(Asia/Shanghai, kernel.clock). A decision counts on the day it was taken (`decided_at`); a
rejection's reasons count once per rejected case and code. `agency_code` None: every agency's
cases; a code: that agency's only (a reviewer bound to an agency sees its own figures)."""

from datetime import date

from kernel.clock import CalendarWindow
from kernel.db import Executor

_DECISIONS = """
SELECT (decided_at AT TIME ZONE 'Asia/Shanghai')::date AS day,
       count(*) FILTER (WHERE decision = 'approved') AS approved,
       count(*) FILTER (WHERE decision = 'rejected') AS rejected
FROM cases
WHERE status = 'decided' AND decided_at >= $1 AND decided_at < $2 AND ($3::text IS NULL OR agency_code = $3)
GROUP BY 1
"""

_REASONS = """
SELECT reason->>'code' AS code, count(DISTINCT case_id) AS n
FROM cases, jsonb_array_elements(reasons) AS reason
WHERE status = 'decided' AND decision = 'rejected' AND decided_at >= $1 AND decided_at < $2
  AND ($3::text IS NULL OR agency_code = $3)
GROUP BY 1
"""

_QUEUE = """
SELECT agency_code, count(*) AS pending, count(*) FILTER (WHERE due_on < $1) AS overdue
FROM cases WHERE status = 'pending' AND ($2::text IS NULL OR agency_code = $2)
GROUP BY agency_code
"""


async def decisions_by_day(
    db: Executor, window: CalendarWindow, agency_code: str | None
) -> dict[date, tuple[int, int]]:
    """day -> (approved, rejected) decisions taken that day."""
    rows = await db.fetch(_DECISIONS, *window.bounds(), agency_code)
    return {r["day"]: (int(r["approved"]), int(r["rejected"])) for r in rows}


async def rejection_reasons(db: Executor, window: CalendarWindow, agency_code: str | None) -> dict[str, int]:
    """reason code -> rejections within the window that gave it."""
    rows = await db.fetch(_REASONS, *window.bounds(), agency_code)
    return {r["code"]: int(r["n"]) for r in rows}


async def queue_by_agency(db: Executor, today: date, agency_code: str | None) -> dict[str, tuple[int, int]]:
    """agency code -> (pending, overdue) cases now; overdue: pending and due before `today`
    (the due day itself is still in time, as domain.is_overdue says)."""
    rows = await db.fetch(_QUEUE, today, agency_code)
    return {r["agency_code"]: (int(r["pending"]), int(r["overdue"])) for r in rows}
