-- Reconciliation runs (services/payment/README.md, "Reconciliation"): one row per
-- `flexctl payment reconcile`, written from `ReconciliationRunRecorded` in the transaction that
-- appends it (projections.py). Amounts are integer fen (bigint).
CREATE TABLE IF NOT EXISTS reconciliation_runs (
    run_id           uuid PRIMARY KEY,
    channel          text NOT NULL,
    -- The Asia/Shanghai calendar day of settlement the statement covers.
    statement_date   date NOT NULL,
    statement_file   text NOT NULL,
    statement_sha256 text NOT NULL,
    matched          integer NOT NULL CHECK (matched >= 0),
    matched_fen      bigint NOT NULL CHECK (matched_fen >= 0),
    ours_count       integer NOT NULL CHECK (ours_count >= 0),
    ours_fen         bigint NOT NULL CHECK (ours_fen >= 0),
    statement_count  integer NOT NULL CHECK (statement_count >= 0),
    statement_fen    bigint NOT NULL CHECK (statement_fen >= 0),
    difference_count integer NOT NULL CHECK (difference_count >= 0),
    -- Every difference as the event carries it (kind, transaction_id, out_trade_no, ours_fen, theirs_fen).
    differences      jsonb NOT NULL,
    ran_at           timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS reconciliation_runs_by_day ON reconciliation_runs (channel, statement_date, ran_at);
