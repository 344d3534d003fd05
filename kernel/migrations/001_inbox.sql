-- Incoming notifications already handled (kernel.inbox): one row per (source, external_id),
-- written in the transaction of the events the notification caused, holding the first answer.
-- `result` is NULL only inside the transaction that is handling the notification: the row is
-- claimed first, so a concurrent delivery of the same notification waits on it.
CREATE TABLE IF NOT EXISTS inbox (
    source       text NOT NULL,
    external_id  text NOT NULL,
    result       jsonb,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, external_id)
);
