-- One row per stream, written when its first event is appended (same transaction): lets
-- replay and auditors find a patient's, order's or pump's streams without scanning events.
CREATE TABLE ledger_streams (
    stream        text        PRIMARY KEY,
    originator_id uuid        NOT NULL UNIQUE,
    kind          text        NOT NULL,  -- order, patient, channel, pump, finding, access
    first_notification_id bigint NOT NULL
);
CREATE INDEX ledger_streams_pattern ON ledger_streams (stream text_pattern_ops);

INSERT INTO ledger_streams (stream, originator_id, kind, first_notification_id)
SELECT stream, originator_id, split_part(stream, ':', 1), notification_id
FROM ledger_events WHERE originator_version = 1
ON CONFLICT DO NOTHING;

CREATE TRIGGER ledger_streams_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_streams
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
GRANT SELECT, INSERT ON ledger_streams TO ledger_app;
CREATE TRIGGER ledger_streams_no_truncate
    BEFORE TRUNCATE ON ledger_streams
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
