-- payment's read models (services/payment/projections.py), written in the transaction that
-- appends the events they come from. The event streams are the truth; these answer the person's
-- and the operators' questions and list the accounts a billing run visits.

-- One contribution account per insured person (its id is derived from the person's id).
CREATE TABLE IF NOT EXISTS accounts (
    account_id         uuid PRIMARY KEY,
    insured_person_id  uuid NOT NULL UNIQUE,
    application_id     uuid NOT NULL,
    opened_at          timestamptz NOT NULL,
    -- The approval month in Changzhou (YYYY-MM): bills start there.
    first_period       text NOT NULL CHECK (first_period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
    -- The tiers chosen last and the first month they apply to.
    pension_tier       integer CHECK (pension_tier BETWEEN 1 AND 5),
    medical_tier       integer CHECK (medical_tier = 5),
    tiers_from         text NOT NULL CHECK (tiers_from ~ '^\d{4}-(0[1-9]|1[0-2])$'),
    tiers_changed_at   timestamptz
);

-- One bill per account and month. Amounts are integer fen (bigint), never a float; the items
-- (insurance, tier, amount_fen) add up to amount_fen (contracts.events.payment.BillIssued).
-- The status (due, paid, overdue) is computed when read, against the day in Changzhou; paid_at
-- is set by a settlement.
CREATE TABLE IF NOT EXISTS bills (
    bill_id            uuid PRIMARY KEY,
    account_id         uuid NOT NULL,
    insured_person_id  uuid NOT NULL,
    period             text NOT NULL CHECK (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
    items              jsonb NOT NULL,
    amount_fen         bigint NOT NULL CHECK (amount_fen >= 0),
    due_on             date NOT NULL,
    issued_at          timestamptz NOT NULL,
    paid_at            timestamptz,
    UNIQUE (account_id, period)
);

CREATE INDEX IF NOT EXISTS bills_by_person ON bills (insured_person_id, period);
