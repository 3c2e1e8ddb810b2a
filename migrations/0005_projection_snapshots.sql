-- Snapshots of per-stream fold states every N versions, so "state as of T" on a long stream
-- (a pump channel reporting status every 10 s makes thousands of events a day) folds from
-- the nearest snapshot instead of from the first event. Rebuildable like everything else.
CREATE TABLE projection_snapshots (
    projection      text        NOT NULL,
    generation      int         NOT NULL,
    stream          text        NOT NULL,
    version         bigint      NOT NULL,  -- the stream version the state includes
    notification_id bigint      NOT NULL,
    recorded_at     timestamptz NOT NULL,  -- ledger clock of that event
    max_occurred_at timestamptz NOT NULL,  -- latest source clock among events 1..version
    state           jsonb       NOT NULL,
    PRIMARY KEY (projection, generation, stream, version)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON projection_snapshots TO ledger_app;
