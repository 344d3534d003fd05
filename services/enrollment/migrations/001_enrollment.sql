-- enrollment's own view of people, from identity.events. Either event may come first (a
-- replay interleaves partitions differently), so each fills only its own columns.
CREATE TABLE IF NOT EXISTS people (
    user_id           uuid PRIMARY KEY,
    phone             text,
    name              text,
    birth_date        date,
    gender            text CHECK (gender IN ('male', 'female')),
    id_number_masked  text,
    id_region_code    text,
    verified_at       timestamptz
);

-- Applications by applicant, written in the transaction that opens one. The partial unique
-- index is the "one open application per person" rule: only an approved one is closed.
CREATE TABLE IF NOT EXISTS applications (
    application_id  uuid PRIMARY KEY,
    applicant_id    uuid NOT NULL,
    created_at      timestamptz NOT NULL,
    approved_at     timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS applications_one_open_per_applicant
    ON applications (applicant_id) WHERE approved_at IS NULL;

-- The status projection (services/enrollment/README.md) keeps facts, not state: one row per event, whatever the
-- order or the number of deliveries, and the view is computed from the set of facts on read
-- (services/enrollment/status.py). `application_id` links a fact to an application;
-- `person_id` to a person (payments and text messages name the person, not the application).
CREATE TABLE IF NOT EXISTS status_facts (
    event_id        uuid PRIMARY KEY,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    producer        text NOT NULL,
    correlation_id  text NOT NULL,
    causation_id    text,
    application_id  uuid,
    person_id       uuid,
    data            jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS status_facts_by_application ON status_facts (application_id);
CREATE INDEX IF NOT EXISTS status_facts_by_person ON status_facts (person_id) WHERE application_id IS NULL;
CREATE INDEX IF NOT EXISTS status_facts_applications_of_person ON status_facts (person_id, application_id);
