-- Projection bookkeeping. Each projection has, per table generation, a position (the last
-- notification id applied, written in the same transaction as its rows) and the per-stream
-- fold states; a status operators and the API read (running, caught up, failed with its
-- error, lag); and generations: the active one serves readers through views, a rebuild
-- fills the next one from position 0 and switches the views when it has caught up.

CREATE TABLE projection_generations (
    projection      text        NOT NULL,
    generation      int         NOT NULL CHECK (generation > 0),
    state           text        NOT NULL CHECK (state IN ('building', 'active', 'retired')),
    notification_id bigint      NOT NULL DEFAULT 0,  -- position: last notification applied
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    switched_at     timestamptz,
    PRIMARY KEY (projection, generation)
);
-- At most one active generation per projection.
CREATE UNIQUE INDEX projection_generations_one_active
    ON projection_generations (projection) WHERE state = 'active';

CREATE TABLE projection_stream_states (
    projection      text   NOT NULL,
    generation      int    NOT NULL,
    stream          text   NOT NULL,
    last_position   bigint NOT NULL,  -- last event folded into this state
    state           jsonb  NOT NULL,
    PRIMARY KEY (projection, generation, stream)
);

CREATE TABLE projection_status (
    projection         text        PRIMARY KEY,
    generation         int         NOT NULL,
    status             text        NOT NULL
                       CHECK (status IN ('running', 'caught_up', 'stopped', 'failed', 'rebuilding')),
    position           bigint      NOT NULL DEFAULT 0,
    head               bigint      NOT NULL DEFAULT 0,
    lag_events         bigint      NOT NULL DEFAULT 0,
    lag_seconds        double precision NOT NULL DEFAULT 0,
    error              text,
    failed_at_position bigint,
    pid                int,
    host               text,
    updated_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON projection_generations, projection_stream_states, projection_status TO ledger_app;
