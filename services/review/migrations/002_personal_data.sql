-- Personal data is sealed on the topics (docs/personal-data.md). review opens the applicant's
-- name, birth date and phone when it opens a case and keeps them (the phone masked) for the
-- reviewer; `PersonErased` blanks them in every case of that applicant, while the case and its
-- decision stay.
ALTER TABLE cases ALTER COLUMN applicant_name DROP NOT NULL;
ALTER TABLE cases ALTER COLUMN birth_date DROP NOT NULL;
ALTER TABLE cases ALTER COLUMN phone_masked DROP NOT NULL;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS personal_data_erased_at timestamptz;
CREATE INDEX IF NOT EXISTS cases_by_applicant ON cases (applicant_id);

-- Who was erased: a submission that arrives after the erasure (a replay of a v1 event published
-- in clear) opens its case without the person's data.
CREATE TABLE IF NOT EXISTS erased_people (
    user_id    uuid PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
