"""Aggregate reads of enrollment's status projection for the operators' dashboard (issue 12).

Only counts leave this module: no person, no application id. Days are calendar days of Changzhou
(Asia/Shanghai, kernel.clock), whatever zone the machine or the database session runs in.

An application counts as submitted on the day of its FIRST submission (`EnrollmentSubmitted`
with `attempt` 1, at its `submitted_at`); a resubmission after a rejection (attempt 2, 3, ...) is
the same application again and is not counted a second time. Its district is the Changzhou
district of residence it was submitted with (which decides the accepting agency).

The current status of every application follows the rules of the status view (status.py: the
latest attempt's review case and decision, `active` once a payment of the approved applicant
settled), computed in SQL over the same facts rather than folding every application in Python."""

from datetime import date
from typing import get_args

from contracts.events.enrollment import EVENTS as ENROLLMENT_EVENTS
from kernel.clock import CalendarWindow
from kernel.db import Executor
from services.enrollment.status import ViewStatus

STATUSES: tuple[ViewStatus, ...] = get_args(ViewStatus)

# The day is the event's own `submitted_at` (a test or a replay may store it with another
# envelope time); migration 004 indexes the submissions so that only they are read.
_FIRST_SUBMISSIONS = """
SELECT (submitted_at AT TIME ZONE 'Asia/Shanghai')::date AS day, district, count(DISTINCT application_id) AS n
FROM (
    SELECT application_id, (data->>'submitted_at')::timestamptz AS submitted_at,
           data->>'residence_district_code' AS district
    FROM status_facts
    WHERE event_type = 'EnrollmentSubmitted' AND (data->>'attempt')::int = 1
) AS submitted
WHERE submitted_at >= $1 AND submitted_at < $2
GROUP BY 1, 2
"""

# The status rules of status.py, in SQL: attempt 0 is a draft; the latest attempt's decision
# (the earliest, should there be two) says approved or rejected, approved with a settled payment
# of the applicant is active; otherwise under_review once its case was opened, else submitted.
_BY_STATUS = """
WITH own AS (
    SELECT application_id, person_id, event_type, (data->>'attempt')::int AS attempt,
           coalesce((data->>'decided_at')::timestamptz, occurred_at) AS at, stream_id, stream_version, event_id
    FROM status_facts
    WHERE application_id IS NOT NULL AND event_type = ANY($1::text[])
), latest AS (
    SELECT application_id,
           coalesce(max(attempt) FILTER (WHERE event_type IN
               ('EnrollmentSubmitted', 'ApplicationUnderReview', 'ApplicationApproved', 'ApplicationRejected')), 0)
               AS attempt,
           (array_agg(person_id) FILTER (WHERE person_id IS NOT NULL))[1] AS applicant
    FROM own GROUP BY application_id
), judged AS (  -- one pass: a hash join of each application's latest attempt with its facts
    SELECT l.application_id, l.attempt, l.applicant,
           (array_agg(o.event_type ORDER BY o.at, o.stream_id, o.stream_version, o.event_id)
               FILTER (WHERE o.event_type IN ('ApplicationApproved', 'ApplicationRejected')))[1] AS decision,
           coalesce(bool_or(o.event_type = 'ApplicationUnderReview'), false) AS opened
    FROM latest l LEFT JOIN own o ON o.application_id = l.application_id AND o.attempt = l.attempt
    GROUP BY l.application_id, l.attempt, l.applicant
)
SELECT CASE
         WHEN attempt = 0 THEN 'draft'
         WHEN decision = 'ApplicationApproved' THEN
           CASE WHEN EXISTS (SELECT 1 FROM status_facts p WHERE p.application_id IS NULL
                             AND p.person_id = judged.applicant AND p.event_type = 'PaymentSettled')
                THEN 'active' ELSE 'approved' END
         WHEN decision = 'ApplicationRejected' THEN 'rejected'
         WHEN opened THEN 'under_review'
         ELSE 'submitted'
       END AS status,
       count(*) AS n
FROM judged GROUP BY 1
"""


async def first_submissions(db: Executor, window: CalendarWindow) -> dict[tuple[date, str], int]:
    """(day, residence district code) -> applications submitted for the first time that day."""
    start, end = window.bounds()
    rows = await db.fetch(_FIRST_SUBMISSIONS, start, end)
    return {(r["day"], r["district"]): int(r["n"]) for r in rows}


async def by_status(db: Executor) -> dict[ViewStatus, int]:
    """Every application by its current status, zero-filled."""
    own = list(dict.fromkeys(cls.event_type for cls in ENROLLMENT_EVENTS))
    rows = await db.fetch(_BY_STATUS, own)
    found = {r["status"]: int(r["n"]) for r in rows}
    return {status: found.get(status, 0) for status in STATUSES}
