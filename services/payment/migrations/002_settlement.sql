-- Settlement read models (services/payment/README.md, "Settlement"), written from payment's own
-- events in the transaction that appends them (projections.py). Amounts are integer fen (bigint).

-- Every payment taken: a settlement of a bill (kind 'settlement', at most one per bill) or money
-- for a bill already paid (kind 'overpayment', owed back: the operators' refund list).
CREATE TABLE IF NOT EXISTS payments (
    payment_id           uuid PRIMARY KEY,
    kind                 text NOT NULL CHECK (kind IN ('settlement', 'overpayment')),
    bill_id              uuid NOT NULL,
    account_id           uuid NOT NULL,
    insured_person_id    uuid NOT NULL,
    -- Who paid, as the channel names them (代人缴费: may be someone else than the insured person).
    payer_id             text,
    payer_name_masked    text,
    channel              text NOT NULL,
    channel_txn_id       text NOT NULL,
    amount_fen           bigint NOT NULL CHECK (amount_fen > 0),
    bank                 text,
    paid_at              timestamptz NOT NULL,
    -- overpayment: the settlement that paid the bill first.
    settling_payment_id  uuid,
    UNIQUE (channel, channel_txn_id)
);

CREATE UNIQUE INDEX IF NOT EXISTS one_settlement_per_bill ON payments (bill_id) WHERE kind = 'settlement';
CREATE INDEX IF NOT EXISTS overpayments ON payments (paid_at) WHERE kind = 'overpayment';

-- Genuine notifications that could not settle, for the operators to reconcile.
CREATE TABLE IF NOT EXISTS reconciliation_exceptions (
    exception_id    uuid PRIMARY KEY,
    code            text NOT NULL CHECK (code IN ('amount_mismatch', 'unknown_bill')),
    channel         text NOT NULL,
    channel_txn_id  text NOT NULL,
    out_trade_no    text NOT NULL,
    bill_id         uuid,
    expected_fen    bigint,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    paid_at         timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    UNIQUE (channel, channel_txn_id)
);

-- Failed bank withholding collections (the bill stays due; the withholding run retries).
CREATE TABLE IF NOT EXISTS collection_failures (
    failure_id             uuid PRIMARY KEY,
    out_trade_no           text NOT NULL,
    bill_id                uuid,
    collection_request_id  text NOT NULL,
    channel_txn_id         text NOT NULL UNIQUE,
    amount_fen             bigint NOT NULL CHECK (amount_fen > 0),
    bank                   text NOT NULL,
    reason                 text NOT NULL,
    bank_detail            text,
    failed_at              timestamptz NOT NULL,
    recorded_at            timestamptz NOT NULL
);
