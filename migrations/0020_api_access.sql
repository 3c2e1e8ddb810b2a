-- The auditor query API (projections/api): API keys, the read-audit log, its sealing progress
-- into the ledger, and the pseudonym map that lets an auditor address a patient by token.

-- Bearer keys: random 256-bit secrets, stored only as SHA-256 (a slow password hash buys
-- nothing for random keys and would cost a millisecond per request). Revocation sets
-- revoked_at; rows are never deleted, so access records keep pointing at a known key.
CREATE TABLE api_keys (
    key_id     text        PRIMARY KEY,
    role       text        NOT NULL
               CHECK (role IN ('integration', 'auditor', 'safety_officer', 'admin', 'producer')),
    key_hash   bytea       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    label      text,
    actor_id   text,       -- the person behind the key, as written into events they cause
    actor_role text        CHECK (actor_role IN ('nurse', 'pharmacist', 'prescriber', 'system', 'device')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at timestamptz
);

-- Every request that touches patient-level data, written before its response is sent.
-- Append-only like the ledger itself; a sealer appends each row to the ledger as an
-- `access.recorded` event (same event_id), where the hash chain covers it.
CREATE TABLE api_access_log (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    request_id   text        NOT NULL,
    key_id       text        NOT NULL,
    role         text        NOT NULL,
    method       text        NOT NULL,
    endpoint     text        NOT NULL,  -- the route template, e.g. /v1/patients/{patient_ref}
    path         text        NOT NULL,  -- the concrete path requested
    query        text,                  -- the raw query string
    purpose      text,                  -- stated purpose of use (break-glass reason)
    facility_ids text[]      NOT NULL DEFAULT '{}',
    patient_ids  text[]      NOT NULL DEFAULT '{}',
    outcome      text        NOT NULL CHECK (outcome IN ('allowed', 'denied', 'error')),
    status_code  int         CHECK (status_code BETWEEN 100 AND 599)
);
CREATE INDEX api_access_log_occurred ON api_access_log (occurred_at);
CREATE INDEX api_access_log_endpoint ON api_access_log (endpoint, id);

CREATE TRIGGER api_access_log_no_update_delete
    BEFORE UPDATE OR DELETE ON api_access_log
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER api_access_log_no_truncate
    BEFORE TRUNCATE ON api_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- How far the sealer has appended the log to the ledger (one row; it only moves forward).
CREATE TABLE api_access_seal (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    sealed_through bigint  NOT NULL DEFAULT 0
);
INSERT INTO api_access_seal DEFAULT VALUES;

CREATE FUNCTION api_access_seal_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sealed_through < OLD.sealed_through THEN
        RAISE EXCEPTION 'api: sealed_through cannot move back from % to %',
            OLD.sealed_through, NEW.sealed_through USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER api_access_seal_forward_only
    BEFORE UPDATE ON api_access_seal
    FOR EACH ROW EXECUTE FUNCTION api_access_seal_forward_only();
CREATE TRIGGER api_access_seal_no_delete
    BEFORE DELETE ON api_access_seal
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Pseudonyms the API has handed out: HMAC tokens are one-way, so resolving a token an
-- auditor sends back needs the pairs issued (written with the access record that issued
-- them). Tokens of another key (after a rotation) simply stop resolving.
CREATE TABLE api_pseudonyms (
    token           text        PRIMARY KEY,
    facility_id     text        NOT NULL,
    patient_id      text        NOT NULL,
    key_fingerprint text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

GRANT SELECT, INSERT, UPDATE ON api_keys TO ledger_app;
GRANT SELECT, INSERT ON api_access_log, api_pseudonyms TO ledger_app;
GRANT USAGE, SELECT ON SEQUENCE api_access_log_id_seq TO ledger_app;
GRANT SELECT, UPDATE ON api_access_seal TO ledger_app;
