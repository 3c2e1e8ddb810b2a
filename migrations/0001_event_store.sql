-- The event store: eventsourcing's application table (its five columns, unchanged, so the
-- library's readers, notification log and LISTEN/NOTIFY subscriptions work as shipped)
-- plus the ledger's own columns, written by ledger.store.recorder in the same row.
-- The migrations own this DDL; the library runs with CREATE_TABLE=no.

CREATE TABLE ledger_events (
    originator_id      uuid        NOT NULL,  -- stream id: uuid5 of the stream key
    originator_version bigint      NOT NULL,  -- 1-based version within the stream
    topic              text        NOT NULL,  -- the wire type, e.g. infusion.rate_changed
    state              bytea       NOT NULL,  -- canonical JSON of the stored record (hashed)
    notification_id    bigserial,             -- global position (commit order)
    event_id           uuid        NOT NULL,  -- producer's idempotency key
    stream             text        NOT NULL,  -- stream key, e.g. channel:default:PUMP-7:A
    occurred_at        timestamptz NOT NULL,  -- source clock, as reported
    received_at        timestamptz,           -- edge clock
    recorded_at        timestamptz NOT NULL,  -- ledger commit clock
    hash               bytea       NOT NULL,  -- sha256(previous hash of the stream || state)
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE UNIQUE INDEX ledger_events_notification_id_idx ON ledger_events (notification_id ASC);
-- The idempotency constraint: one event_id is stored at most once, whatever its content.
CREATE UNIQUE INDEX ledger_events_event_id_idx ON ledger_events (event_id);

-- eventsourcing registers this composite type when its recorder starts.
CREATE TYPE stored_event_uuid AS (
    originator_id uuid, originator_version bigint, topic text, state bytea
);

-- Where each source (a Kafka consumer group's topic-partition, or an import) has been read up
-- to: written in the same transaction as the events it covers, so it is the truth on restart.
CREATE TABLE ledger_source_positions (
    consumer    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, topic, partition)
);
