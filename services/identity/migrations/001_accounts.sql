-- Lookups the aggregate cannot answer by stream id, kept in the transaction of the events
-- that establish them. Secrets and full ID numbers stay here, never in events or on Kafka.
CREATE TABLE IF NOT EXISTS credentials (
    user_id        uuid PRIMARY KEY,
    phone          text NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('applicant', 'reviewer', 'operator')),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- One ID number binds to one account (the unique key decides races between two accounts).
CREATE TABLE IF NOT EXISTS id_bindings (
    id_number  text PRIMARY KEY,
    user_id    uuid NOT NULL UNIQUE,
    bound_at   timestamptz NOT NULL DEFAULT now()
);
