-- Reminders of overdue bills and messages about failed bank withholding collections (issue 8,
-- "Downstream"), with the same exactly-once rules as decisions and receipts.

-- What such a message reports, unique, so that an event re-published under a new event_id still
-- yields one message (as case_id does for decisions and payment_id for receipts):
-- `overdue_bill:<bill_id>` (one reminder per bill, BillOverdue) or
-- `failed_collection:<collection_request_id>` (one message per failed collection request,
-- WithholdingCollectionFailed). Its prefix is the cause the replay guard's note names. NULL for
-- decisions and receipts (their keys are case_id and payment_id): existing rows stay as they are.
-- For these messages decided_at holds the event's overdue_at or failed_at: the replay guard's age.
ALTER TABLE sms_messages ADD COLUMN IF NOT EXISTS subject text UNIQUE;

-- The bill a reminder or a collection failure is about (not unique: a bill's collection may fail
-- more than once), so that operators find every message about one bill.
ALTER TABLE sms_messages ADD COLUMN IF NOT EXISTS bill_id uuid;
CREATE INDEX IF NOT EXISTS sms_messages_bill ON sms_messages (bill_id) WHERE bill_id IS NOT NULL;
