-- The index of 0007 becomes the primary key and the original primary-key index goes: both
-- were unique on (originator_id, originator_version), so every append paid for two b-tree
-- insertions where one does (measured on the append path: bench/append.py). The swap is
-- one ALTER TABLE: brief ACCESS EXCLUSIVE lock, no rebuild, since the index already exists.
-- The constraint keeps its name; PostgreSQL renames the index to ledger_events_pkey.
ALTER TABLE ledger_events
    DROP CONSTRAINT ledger_events_pkey,
    ADD CONSTRAINT ledger_events_pkey PRIMARY KEY USING INDEX ledger_events_stream_occurred;
