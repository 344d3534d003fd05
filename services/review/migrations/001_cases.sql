-- The case queue: one row per review case, written in the transaction that appends the case's
-- events. The unique (application_id, attempt) makes "one case per submission" a database fact:
-- a second EnrollmentSubmitted for the same submission (redelivered, or re-published with a
-- new event_id) finds the row and opens nothing.
CREATE TABLE IF NOT EXISTS cases (
    case_id                  uuid PRIMARY KEY,
    application_id           uuid NOT NULL,
    attempt                  integer NOT NULL CHECK (attempt >= 1),
    applicant_id             uuid NOT NULL,
    agency_code              text NOT NULL,
    due_on                   date NOT NULL,
    opened_at                timestamptz NOT NULL,
    submitted_at             timestamptz NOT NULL,
    -- The applicant's facts as submitted, for the reviewer to check against the documents.
    -- Only masked identifiers are kept: the reviewer compares, and never needs the full numbers.
    applicant_name           text NOT NULL,
    id_number_masked         text NOT NULL,
    gender                   text NOT NULL,
    birth_date               date NOT NULL,
    phone_masked             text NOT NULL,
    household_kind           text NOT NULL,
    household_region_code    text NOT NULL,
    residence_district_code  text NOT NULL,
    pension_tier             integer,
    medical_tier             integer,
    documents                jsonb NOT NULL,
    status                   text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'decided')),
    decision                 text CHECK (decision IN ('approved', 'rejected')),
    reasons                  jsonb NOT NULL DEFAULT '[]',
    reviewer_id              uuid,
    decided_at               timestamptz,
    UNIQUE (application_id, attempt)
);

-- The reviewers' worklist: pending cases, most urgent first (all agencies, or one).
CREATE INDEX IF NOT EXISTS cases_pending_by_due ON cases (due_on, submitted_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS cases_by_agency ON cases (agency_code, status, due_on);
CREATE INDEX IF NOT EXISTS cases_decided_by_time ON cases (decided_at DESC) WHERE status = 'decided';
