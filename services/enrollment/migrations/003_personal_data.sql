-- Personal data is sealed on the topics (docs/personal-data.md). enrollment keeps a clear copy
-- of a person only in `people`, opened with the person's key when identity's events arrive, and
-- deletes it when `PersonErased` arrives.

-- UserVerified v2 no longer carries the ID number's region code: with the birth date and the
-- last four characters it rebuilt the whole number.
ALTER TABLE people DROP COLUMN IF EXISTS id_region_code;

-- Who was erased, and when: a late or replayed identity event of an erased person (a v1 event
-- published in clear before sealing existed) must not bring their data back.
CREATE TABLE IF NOT EXISTS erased_people (
    user_id    uuid PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
