-- Personal data sealed per person and erasable (docs/personal-data.md).

-- Each person's data key (32 random bytes), created in the registration transaction. identity is
-- the only holder: readers fetch it over GET /v1/person-keys/{user_id}; erasure deletes the row,
-- and every sealed copy on every topic becomes unreadable.
CREATE TABLE IF NOT EXISTS person_keys (
    user_id     uuid PRIMARY KEY,
    data_key    bytea NOT NULL CHECK (octet_length(data_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One ID number binds to one account, kept as HMAC-SHA-256 under IDENTITY_ID_NUMBER_HMAC_KEY so
-- that the table holds no ID number. The service checks for a binding before inserting; the
-- unique keys stay to decide a race between two accounts.
CREATE TABLE IF NOT EXISTS id_number_bindings (
    id_number_hmac  bytea PRIMARY KEY CHECK (octet_length(id_number_hmac) = 32),
    user_id         uuid NOT NULL UNIQUE,
    bound_at        timestamptz NOT NULL DEFAULT now()
);

-- id_bindings (001) held clear numbers. SQL cannot compute the keyed hash (the key is a setting,
-- not in the database), so the service moves its rows into id_number_bindings at start and
-- before every verification or erasure (services/identity/projections.py,
-- rekey_legacy_bindings). Nothing writes the old table any more: once moved, it stays empty.
COMMENT ON TABLE id_bindings IS 'legacy: clear ID numbers, re-keyed into id_number_bindings by the service';
