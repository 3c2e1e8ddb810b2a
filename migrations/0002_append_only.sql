-- Append-only, enforced by PostgreSQL itself: no UPDATE, DELETE or TRUNCATE of events, whoever
-- asks (triggers fire for the table owner too); source positions may only move forward.
-- The application role gets INSERT and SELECT only, so even a disabled trigger does not open
-- the door to it. Only a superuser who disables triggers can tamper, and `ledger verify` exists
-- to catch exactly that.

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is forbidden: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledger_events_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_events_no_truncate
    BEFORE TRUNCATE ON ledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_positions_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.consumer IS DISTINCT FROM OLD.consumer OR NEW.topic IS DISTINCT FROM OLD.topic
       OR NEW.partition IS DISTINCT FROM OLD.partition THEN
        RAISE EXCEPTION 'ledger: a source position row cannot be re-keyed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.next_offset < OLD.next_offset THEN
        RAISE EXCEPTION 'ledger: source position %:%:% cannot move back from % to %',
            OLD.consumer, OLD.topic, OLD.partition, OLD.next_offset, NEW.next_offset
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_source_positions_forward_only
    BEFORE UPDATE ON ledger_source_positions
    FOR EACH ROW EXECUTE FUNCTION ledger_positions_forward_only();
CREATE TRIGGER ledger_source_positions_no_delete
    BEFORE DELETE ON ledger_source_positions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_source_positions_no_truncate
    BEFORE TRUNCATE ON ledger_source_positions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The role the ledger's processes run as (cluster-wide; created once, granted per database).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        CREATE ROLE ledger_app LOGIN;
    END IF;
END;
$$;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO ledger_app', current_database());
END;
$$;
GRANT USAGE ON SCHEMA public TO ledger_app;
REVOKE ALL ON ledger_events, ledger_source_positions FROM ledger_app;
GRANT SELECT, INSERT ON ledger_events TO ledger_app;
GRANT USAGE, SELECT ON SEQUENCE ledger_events_notification_id_seq TO ledger_app;
GRANT SELECT, INSERT, UPDATE ON ledger_source_positions TO ledger_app;
