-- The kernel's tables, created in each service's own schema (search_path is that schema).

-- Append-only event store. `position` orders the log; `tx_id` lets readers of the whole log
-- stop before any transaction that is still in flight (see EventStore.read_all).
CREATE TABLE IF NOT EXISTS events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL UNIQUE,
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL CHECK (stream_version >= 1),
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    correlation_id  text NOT NULL,
    causation_id    text,
    data            jsonb NOT NULL,
    UNIQUE (stream_id, stream_version)
);

-- Events not yet published. A row is written in the same transaction as its event and
-- deleted only after the broker acknowledged it, so a late-committing transaction's row is
-- simply found later: the relay never follows a position, so it cannot skip one.
CREATE TABLE IF NOT EXISTS outbox (
    position bigint PRIMARY KEY REFERENCES events (position)
);

-- What each consumer group has handled, written in the transaction of the handler's effect.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    outcome       text NOT NULL DEFAULT 'handled',
    error         text,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
