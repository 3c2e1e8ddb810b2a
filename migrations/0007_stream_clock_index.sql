-- migrate: no-transaction
-- "As happened by T" may start its fold from a snapshot only if no later event of the stream
-- happened before the snapshot's latest source clock (projections/runtime/asof.py). Without
-- this index that NOT EXISTS test reads the whole stream from the heap for every candidate
-- snapshot (16 ms on a 10,000-event channel, growing with its length); with it, an
-- index-only scan of the events after the snapshot, stopping at the first late one (0.3 ms).
-- It also turns the max(occurred_at) read behind every new snapshot into an index-only scan.
-- CONCURRENTLY (hence no transaction): appends go on while it is built on a large ledger.
-- UNIQUE on the primary key's columns: 0008 makes it the primary key, so every append
-- maintains one index on (originator_id, originator_version), not two.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ledger_events_stream_occurred
    ON ledger_events (originator_id, originator_version) INCLUDE (occurred_at);
