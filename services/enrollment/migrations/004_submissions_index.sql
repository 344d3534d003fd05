-- The operators' dashboard (GET /v1/stats/applications, services/enrollment/stats.py) counts first
-- submissions per day: with this partial index it reads the submissions, not every fact.
CREATE INDEX IF NOT EXISTS status_facts_submissions ON status_facts (application_id)
    WHERE event_type = 'EnrollmentSubmitted';
