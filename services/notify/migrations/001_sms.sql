-- Who can be texted: user_id -> phone, from identity's UserRegistered (full number: personal
-- data, never logged, shown masked).
CREATE TABLE IF NOT EXISTS recipients (
    user_id      uuid PRIMARY KEY,
    phone        text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per text message: the intent, recorded before any provider call, and its fate.
-- sms_id is derived from the causing event's id and is the provider's out-id.
-- Exactly one message per decision: unique on the causing event, and on the review case so
-- that a decision re-published under a new event_id still yields one message.
CREATE TABLE IF NOT EXISTS sms_messages (
    sms_id               uuid PRIMARY KEY,
    cause_event_id       uuid NOT NULL UNIQUE,
    case_id              uuid UNIQUE,
    application_id       uuid,
    recipient_id         uuid NOT NULL,
    phone                text,
    template             text NOT NULL,
    params               jsonb NOT NULL,
    text                 text NOT NULL,
    correlation_id       text NOT NULL,
    state                text NOT NULL
        CHECK (state IN ('awaiting_recipient', 'pending', 'sending', 'sent', 'failed')),
    -- true when an earlier attempt may have reached the provider: ask it before sending again
    uncertain            boolean NOT NULL DEFAULT false,
    attempts             integer NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    sending_since        timestamptz,
    first_attempt_at     timestamptz,
    last_attempt_at      timestamptz,
    provider             text,
    provider_message_id  text,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz,
    failed_at            timestamptz,
    CHECK (state = 'awaiting_recipient' OR phone IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS sms_messages_due ON sms_messages (next_attempt_at)
    WHERE state IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS sms_messages_awaiting ON sms_messages (recipient_id)
    WHERE state = 'awaiting_recipient';
CREATE INDEX IF NOT EXISTS sms_messages_log ON sms_messages (created_at DESC, sms_id);
CREATE INDEX IF NOT EXISTS sms_messages_recipient ON sms_messages (recipient_id, created_at DESC);

-- The local sink gateway's "provider side": every message it was given, duplicates included
-- (a provider does not de-duplicate, so neither does the sink: tests count rows per out_id).
CREATE TABLE IF NOT EXISTS sms_sink (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    out_id       text NOT NULL,
    phone        text NOT NULL,
    template     text NOT NULL,
    params       jsonb NOT NULL,
    text         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sms_sink_out_id ON sms_sink (out_id);
