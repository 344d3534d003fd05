-- SMS one-time codes (services/identity/phone_codes.py). The phone is kept only as a keyed hash,
-- the code only as HMAC-SHA-256 under identity's key of its own per-code salt.
CREATE TABLE IF NOT EXISTS phone_codes (
    code_id     uuid PRIMARY KEY,
    phone_hmac  bytea NOT NULL,
    purpose     text NOT NULL CHECK (purpose IN ('register', 'change_phone')),
    user_id     uuid,                 -- change_phone: the only account that may use it
    salt        bytea NOT NULL,
    code_hash   bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX IF NOT EXISTS phone_codes_lookup ON phone_codes (phone_hmac, purpose, created_at);

-- Development and tests only (IDENTITY_CODE_SENDER=local_sink, refused outside development):
-- the texts identity would have asked notify to send, the stand-in for the phone.
CREATE TABLE IF NOT EXISTS code_sink (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone        text NOT NULL,
    template     text NOT NULL,
    text         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
