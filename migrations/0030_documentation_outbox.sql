-- The EHR documentation feed (projections/documentation, publisher/): the outbox the
-- documentation projection writes in the same transaction as its rows, and what the
-- publisher records about each delivery.
--
-- Neither table belongs to a projection generation. A rebuild builds generation n+1 from
-- position 0 and runs the same writer; its outbox inserts are "insert if no version of
-- this entry at this revision or later is enqueued yet", so everything the live generation
-- already enqueued (and so possibly sent) is skipped, and nothing is sent twice.

-- One row per version of a chart entry, in commit order. Writers serialise on an advisory
-- transaction lock before taking a seq, so a reader that sees seq N has seen every seq
-- below N that will ever commit: keyset paging on seq neither skips nor repeats.
-- Rows are never updated or deleted (the feed is a log consumers replay from a cursor).
CREATE TABLE documentation_outbox (
    seq            bigserial   PRIMARY KEY,
    entry_id       uuid        NOT NULL,
    revision       bigint      NOT NULL,  -- ledger position of the last event behind it
    first_revision boolean     NOT NULL,  -- the entry's first version: a create, not an update
    facility_id    text        NOT NULL,
    patient_id     text,
    episode_id     uuid,
    kind           text        NOT NULL,
    doc_status     text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    entry          text        NOT NULL,  -- chart-ready entry, canonical JSON bytes
    resource       text        NOT NULL,  -- FHIR R4 resource, canonical JSON bytes
    generation     int         NOT NULL,  -- which projection generation enqueued it
    enqueued_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (entry_id, revision)
);
CREATE INDEX documentation_outbox_entry ON documentation_outbox (entry_id, revision DESC);
CREATE INDEX documentation_outbox_episode ON documentation_outbox (episode_id);
CREATE INDEX documentation_outbox_facility ON documentation_outbox (facility_id, seq);

CREATE TRIGGER documentation_outbox_no_update_delete
    BEFORE UPDATE OR DELETE ON documentation_outbox
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER documentation_outbox_no_truncate
    BEFORE TRUNCATE ON documentation_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- What a publisher did with each outbox row, per target ("http:<base url>",
-- "kafka:<topic>"). A publisher works strictly in seq order, so its position on a target is
-- max(seq) here; a row is written only after the target confirmed (acknowledged) or refused
-- the content for good (rejected, with the reason): a crash in between re-sends, and the
-- target absorbs the copy (If-None-Exist / conditional update on the entry identifier).
CREATE TABLE documentation_deliveries (
    target       text        NOT NULL,
    seq          bigint      NOT NULL REFERENCES documentation_outbox (seq),
    entry_id     uuid        NOT NULL,
    revision     bigint      NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('acknowledged', 'rejected')),
    status_code  int,
    detail       text,
    location     text,
    attempts     int         NOT NULL CHECK (attempts > 0),
    delivered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (target, seq)
);
CREATE INDEX documentation_deliveries_seq ON documentation_deliveries (seq);

GRANT SELECT, INSERT ON documentation_outbox, documentation_deliveries TO ledger_app;
GRANT USAGE, SELECT ON SEQUENCE documentation_outbox_seq_seq TO ledger_app;
