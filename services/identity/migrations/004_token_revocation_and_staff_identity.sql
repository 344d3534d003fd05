-- Token revocation (services/identity/README.md, "Revocation"): one row per account ever disabled
-- or whose tokens were revoked (password reset, role change, disabling), so the list every service
-- polls stays small. Tokens carry the account's version as `ver`; older ones are refused.
CREATE TABLE IF NOT EXISTS account_security (
    user_id        uuid PRIMARY KEY REFERENCES credentials (user_id) ON DELETE CASCADE,
    token_version  integer NOT NULL DEFAULT 0 CHECK (token_version >= 0),
    disabled       boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A staff account's own ID number, as the same keyed hash as id_number_bindings (HMAC-SHA-256
-- under IDENTITY_ID_NUMBER_HMAC_KEY): never the number. Not a binding: the staff member may also
-- hold an applicant account bound to that number, which is exactly what review must detect
-- (403 own_case, services/review/README.md). Not unique for the same reason across roles; one
-- staff account per number.
CREATE TABLE IF NOT EXISTS staff_identities (
    user_id         uuid PRIMARY KEY REFERENCES credentials (user_id) ON DELETE CASCADE,
    id_number_hmac  bytea NOT NULL UNIQUE CHECK (octet_length(id_number_hmac) = 32),
    linked_at       timestamptz NOT NULL DEFAULT now()
);
