-- The S1 paging feed of the discrepancy engine (projections/discrepancies): the outbox the
-- projection writes in its batch transaction when a finding is S1 (opened so, or escalated
-- to it), and what a publisher at the edge (outside projections/) records about sending
-- each row to the configured webhook and/or the Kafka topic infusion.discrepancies.v1.
--
-- Neither table belongs to a projection generation. Only the *active* generation enqueues
-- (a rebuild filling generation n+1 from position 0 does not page anyone about the past),
-- and an entry is enqueued at most once (outbox_id = uuid5 of finding id and severity; a
-- finding's id is itself deterministic), so replays and rebuilds never re-send.

-- One row per page, in commit order. Writers serialise on an advisory transaction lock
-- before taking a seq, so a reader that sees seq N has seen every seq below N that will
-- ever commit: keyset paging on seq neither skips nor repeats. Rows are never updated or
-- deleted (consumers replay the feed from a cursor).
CREATE TABLE discrepancy_outbox (
    seq         bigserial   PRIMARY KEY,
    outbox_id   uuid        NOT NULL UNIQUE,
    finding_id  uuid        NOT NULL,
    rule_id     text        NOT NULL,
    severity    text        NOT NULL,
    facility_id text        NOT NULL,
    patient_id  text,
    unit        text,
    opened_at   timestamptz NOT NULL,
    payload     text        NOT NULL,  -- the finding as canonical JSON when it was enqueued
    position    bigint      NOT NULL,  -- ledger position of the event that made it S1
    generation  int         NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX discrepancy_outbox_finding ON discrepancy_outbox (finding_id);

CREATE TRIGGER discrepancy_outbox_no_update_delete
    BEFORE UPDATE OR DELETE ON discrepancy_outbox
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER discrepancy_outbox_no_truncate
    BEFORE TRUNCATE ON discrepancy_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- What a publisher did with each outbox row, per target ("http:<url>", "kafka:<topic>"),
-- written after the target confirmed (or refused for good): a crash in between re-sends,
-- and receivers dedupe on outbox_id.
CREATE TABLE discrepancy_deliveries (
    target       text        NOT NULL,
    seq          bigint      NOT NULL REFERENCES discrepancy_outbox (seq),
    outbox_id    uuid        NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('acknowledged', 'rejected')),
    status_code  int,
    detail       text,
    attempts     int         NOT NULL CHECK (attempts > 0),
    delivered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (target, seq)
);

GRANT SELECT, INSERT ON discrepancy_outbox, discrepancy_deliveries TO ledger_app;
GRANT USAGE, SELECT ON SEQUENCE discrepancy_outbox_seq_seq TO ledger_app;
