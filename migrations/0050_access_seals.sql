-- The read audit's own hash chain (ledger/store/access_seals.py, docs/tamper-evidence.md §6).
-- The sealer no longer appends one ledger event per access record: it seals the new rows of
-- api_access_log a batch at a time — which rows, the Merkle root of their access.recorded
-- events, the link to the previous seal — and anchors each seal in the ledger with one
-- access.sealed event (event_id below). Rows sealed earlier as access.recorded events stay
-- as they are; `ledger verify` checks both kinds.
CREATE TABLE api_access_seals (
    seal_id         bigint      PRIMARY KEY CHECK (seal_id >= 1),
    record_ids      bigint[]    NOT NULL CHECK (cardinality(record_ids) >= 1),
    first_record_id bigint      NOT NULL,
    last_record_id  bigint      NOT NULL,
    records_root    bytea       NOT NULL CHECK (length(records_root) = 32),
    previous_hash   bytea       NOT NULL CHECK (length(previous_hash) = 32),
    seal_hash       bytea       NOT NULL UNIQUE CHECK (length(seal_hash) = 32),
    event_id        uuid        NOT NULL UNIQUE,  -- the access.sealed event in the ledger
    sealed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (first_record_id = record_ids[1]
           AND last_record_id = record_ids[cardinality(record_ids)])
);
-- Which seal holds a record: seals are cut from rows read in id order, so the first seal
-- whose last id is at or above a record's id almost always holds it.
CREATE INDEX api_access_seals_last ON api_access_seals (last_record_id);

CREATE TRIGGER api_access_seals_no_update_delete
    BEFORE UPDATE OR DELETE ON api_access_seals
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER api_access_seals_no_truncate
    BEFORE TRUNCATE ON api_access_seals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

GRANT SELECT, INSERT ON api_access_seals TO ledger_app;
