-- Global checkpoints: a Merkle root over the hashes of every event in a range of the global
-- order, chained to the previous checkpoint, plus the stream heads the range moved. An auditor
-- exports them (`ledger checkpoint export`) and keeps the file outside the system; `ledger
-- verify --checkpoints FILE` then catches a rewrite of both events and checkpoints.

CREATE TABLE ledger_checkpoints (
    checkpoint_id         bigint      PRIMARY KEY CHECK (checkpoint_id > 0),
    after_notification_id bigint      NOT NULL,  -- exclusive lower bound of the range
    last_notification_id  bigint      NOT NULL,  -- inclusive upper bound
    event_count           bigint      NOT NULL,
    merkle_root           bytea       NOT NULL,  -- RFC 6962 tree over the events' hashes
    heads                 jsonb       NOT NULL,  -- {stream: {"version": n, "hash": hex}} moved in range
    previous_hash         bytea       NOT NULL,  -- checkpoint_hash of checkpoint_id - 1 (or genesis)
    created_at            timestamptz NOT NULL,
    checkpoint_hash       bytea       NOT NULL,
    CHECK (last_notification_id > after_notification_id)
);

CREATE TRIGGER ledger_checkpoints_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_checkpoints_no_truncate
    BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

REVOKE ALL ON ledger_checkpoints FROM ledger_app;
GRANT SELECT, INSERT ON ledger_checkpoints TO ledger_app;
