-- The S1 paging feed's delivery record (`ledger publish-findings`, publisher/): what each
-- target answered about each discrepancy_outbox row is history an investigation relies on
-- ("was the safety officer paged, when, after how many attempts?"), so it is append-only
-- like the outbox itself. The publisher only ever INSERTs (ON CONFLICT DO NOTHING: a row
-- recorded twice keeps the first answer, and DO NOTHING fires no UPDATE trigger).
--
-- 0010 created the table; it is changed here rather than there because applied migrations
-- are never edited.

CREATE TRIGGER discrepancy_deliveries_no_update_delete
    BEFORE UPDATE OR DELETE ON discrepancy_deliveries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER discrepancy_deliveries_no_truncate
    BEFORE TRUNCATE ON discrepancy_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Joins from the outbox ("which pages are not delivered anywhere yet") go by seq; the
-- primary key (target, seq) serves the publisher's per-target position.
CREATE INDEX discrepancy_deliveries_seq ON discrepancy_deliveries (seq);

REVOKE ALL ON discrepancy_deliveries FROM ledger_app;
GRANT SELECT, INSERT ON discrepancy_deliveries TO ledger_app;
