-- Payment receipts (issue 8, "Downstream": one receipt SMS per settlement, with the same
-- exactly-once rules as decisions).

-- The settlement a receipt reports: unique, so that a settlement re-published under a new
-- event_id still yields one message (as case_id does for decisions). For a receipt, decided_at
-- holds the settlement's settled_at: the replay guard's age.
ALTER TABLE sms_messages ADD COLUMN IF NOT EXISTS payment_id uuid UNIQUE;

-- The month of each bill (payment's BillIssued): PaymentSettled names the bill, not its month.
CREATE TABLE IF NOT EXISTS bills (
    bill_id      uuid PRIMARY KEY,
    period       text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- A settlement seen before its bill (published under another key, so on another partition):
-- it waits here, one row per settlement, and becomes its receipt once the bill is known.
-- No personal data: ids, channel and amount only.
CREATE TABLE IF NOT EXISTS receipts_awaiting_bill (
    payment_id      uuid PRIMARY KEY,
    bill_id         uuid NOT NULL,
    cause_event_id  uuid NOT NULL,
    settlement      jsonb NOT NULL,
    correlation_id  text NOT NULL,
    seen_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS receipts_awaiting_bill_bill ON receipts_awaiting_bill (bill_id);
