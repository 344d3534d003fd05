-- Throttling (kernel.throttle): sliding windows and lock-outs, shared by every process of a
-- service because they live in its database. Keys are keyed hashes (never a phone in clear).
CREATE TABLE IF NOT EXISTS throttle_hits (
    rule  text NOT NULL,
    key   bytea NOT NULL,
    at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS throttle_hits_rule_key_at ON throttle_hits (rule, key, at);

-- A key locked out after repeated failures: each new lock-out doubles (strikes), up to a cap.
CREATE TABLE IF NOT EXISTS throttle_locks (
    rule          text NOT NULL,
    key           bytea NOT NULL,
    strikes       integer NOT NULL CHECK (strikes >= 1),
    locked_until  timestamptz NOT NULL,
    PRIMARY KEY (rule, key)
);

-- The security log's table copy (the structlog `security_*` lines are the other): failures and
-- lock-outs, with personal data masked; never a password or a code.
CREATE TABLE IF NOT EXISTS security_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    event    text NOT NULL,
    subject  text,
    address  text,
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS security_log_at ON security_log (at);
