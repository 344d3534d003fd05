-- Bank withholding (services/payment/README.md, "Bank withholding") and overdue bills.

-- Agreements the banks confirmed: one per person and card (the bank's reference of the card,
-- never its number; its last four digits for the person to recognise it).
CREATE TABLE IF NOT EXISTS withholding_agreements (
    agreement_id       uuid PRIMARY KEY,
    insured_person_id  uuid NOT NULL,
    bank_code          text NOT NULL,
    bank               text NOT NULL,
    card_ref           text NOT NULL,
    card_last4         text CHECK (card_last4 ~ '^[0-9]{4}$'),
    agreement_no       text NOT NULL,
    signed_at          timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL,
    terminated_at      timestamptz,
    UNIQUE (insured_person_id, bank_code, card_ref)
);

CREATE INDEX IF NOT EXISTS active_agreements ON withholding_agreements (insured_person_id, signed_at)
    WHERE terminated_at IS NULL;

-- One row per collection request (CollectionRequested), written in the transaction that records
-- the request, and sent to the bank exactly once by kernel.effects (its standard columns below).
-- `result` is the bank's answer, from its notification: collected (settled) or failed.
CREATE TABLE IF NOT EXISTS collection_requests (
    collection_request_id  uuid PRIMARY KEY,
    bill_id                uuid NOT NULL,
    account_id             uuid NOT NULL,
    insured_person_id      uuid NOT NULL,
    period                 text NOT NULL,
    attempt                integer NOT NULL CHECK (attempt >= 1),
    agreement_id           uuid NOT NULL,
    agreement_no           text NOT NULL,
    bank_code              text NOT NULL,
    amount_fen             bigint NOT NULL CHECK (amount_fen > 0),
    run_id                 uuid NOT NULL,
    requested_at           timestamptz NOT NULL,
    correlation_id         text NOT NULL,
    result                 text CHECK (result IN ('collected', 'failed')),
    result_reason          text,
    result_at              timestamptz,
    -- kernel.effects
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    uncertain        boolean NOT NULL DEFAULT false,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sending_since    timestamptz,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    sent_at          timestamptz,
    failed_at        timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    provider         text,
    provider_ref     text,
    last_error       text,
    UNIQUE (bill_id, attempt)
);

-- The bill stream allows one open collection per bill; the table says so too.
CREATE UNIQUE INDEX IF NOT EXISTS one_open_collection_per_bill ON collection_requests (bill_id)
    WHERE result IS NULL AND state <> 'failed';
CREATE INDEX IF NOT EXISTS collection_requests_due ON collection_requests (next_attempt_at)
    WHERE state IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS collection_requests_by_run ON collection_requests (run_id);

-- The local bank (PAYMENT_BANK_GATEWAY=local): every request it was sent, duplicates too.
CREATE TABLE IF NOT EXISTS bank_collection_sink (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_request_id  uuid NOT NULL,
    bill_id                uuid NOT NULL,
    agreement_no           text NOT NULL,
    bank_code              text NOT NULL,
    amount_fen             bigint NOT NULL,
    received_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS bank_collection_sink_by_request ON bank_collection_sink (collection_request_id);

-- BillOverdue: when the bill was recorded overdue (once; the reminder SMS follows from it).
ALTER TABLE bills ADD COLUMN IF NOT EXISTS overdue_at timestamptz;
CREATE INDEX IF NOT EXISTS bills_unpaid ON bills (due_on) WHERE paid_at IS NULL;
