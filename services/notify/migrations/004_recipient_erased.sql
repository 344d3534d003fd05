-- Personal data is sealed on the topics (docs/personal-data.md). notify keeps a recipient's phone
-- in clear (to text it) until `PersonErased` arrives: then the recipient goes, the phone of their
-- messages is cleared, and a message not yet sent becomes `failed` (`recipient_erased`).
ALTER TABLE sms_messages ADD COLUMN IF NOT EXISTS recipient_erased_at timestamptz;
ALTER TABLE sms_messages DROP CONSTRAINT IF EXISTS sms_messages_phone_when_sendable;
ALTER TABLE sms_messages ADD CONSTRAINT sms_messages_phone_when_sendable
    CHECK (state IN ('awaiting_recipient', 'skipped_stale') OR phone IS NOT NULL OR recipient_erased_at IS NOT NULL);

-- Who was erased: a late or replayed registration (a v1 event published in clear) must not bring
-- the phone back, and a decision about an erased person is not texted.
CREATE TABLE IF NOT EXISTS erased_recipients (
    user_id    uuid PRIMARY KEY,
    erased_at  timestamptz NOT NULL
);
