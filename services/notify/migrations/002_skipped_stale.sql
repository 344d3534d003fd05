-- Replay guard: a review decision too old to text when notify first sees it (a rebuild from the
-- topics) or when its waiting message finally gets the phone is recorded as `skipped_stale`.

-- When the decision was made (ReviewDecided.decided_at). NULL for rows recorded before this
-- migration: for those the release of a waiting message uses created_at instead.
ALTER TABLE sms_messages ADD COLUMN IF NOT EXISTS decided_at timestamptz;

-- 001's CHECKs were unnamed (PostgreSQL called them sms_messages_state_check and
-- sms_messages_check); find them by the columns they cover rather than trust the generated names.
DO $$
DECLARE
    state_col smallint;
    phone_col smallint;
    state_check name;
    phone_check name;
BEGIN
    SELECT attnum INTO state_col FROM pg_attribute WHERE attrelid = 'sms_messages'::regclass AND attname = 'state';
    SELECT attnum INTO phone_col FROM pg_attribute WHERE attrelid = 'sms_messages'::regclass AND attname = 'phone';
    SELECT conname INTO state_check FROM pg_constraint
    WHERE conrelid = 'sms_messages'::regclass AND contype = 'c' AND conkey = ARRAY[state_col];
    SELECT conname INTO phone_check FROM pg_constraint
    WHERE conrelid = 'sms_messages'::regclass AND contype = 'c'
      AND conkey @> ARRAY[state_col, phone_col] AND conkey <@ ARRAY[state_col, phone_col];
    IF state_check IS NULL OR phone_check IS NULL THEN
        RAISE EXCEPTION 'sms_messages: the CHECK constraints of 001_sms.sql were not found (state: %, phone: %)',
            state_check, phone_check;
    END IF;
    EXECUTE format('ALTER TABLE sms_messages DROP CONSTRAINT %I', state_check);
    EXECUTE format('ALTER TABLE sms_messages DROP CONSTRAINT %I', phone_check);
END $$;

ALTER TABLE sms_messages ADD CONSTRAINT sms_messages_state_known
    CHECK (state IN ('awaiting_recipient', 'pending', 'sending', 'sent', 'failed', 'skipped_stale'));
-- A stale decision may be skipped before its recipient's phone is known.
ALTER TABLE sms_messages ADD CONSTRAINT sms_messages_phone_when_sendable
    CHECK (state IN ('awaiting_recipient', 'skipped_stale') OR phone IS NOT NULL);
