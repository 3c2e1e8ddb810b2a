#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data directory.
# Creates the ledger's database owner `ledger` (runs `ledger migrate`; not a superuser, so
# the append-only triggers bind it too) and the least-privilege role `ledger_app`, which
# migration 0002 would otherwise create without a password.
set -euo pipefail
: "${LEDGER_DB_OWNER_PASSWORD:?set LEDGER_DB_OWNER_PASSWORD in env/secrets.env}"
: "${LEDGER_DB_APP_PASSWORD:?set LEDGER_DB_APP_PASSWORD in env/secrets.env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_pw="$LEDGER_DB_OWNER_PASSWORD" -v app_pw="$LEDGER_DB_APP_PASSWORD" <<'SQL'
CREATE ROLE ledger LOGIN PASSWORD :'owner_pw';
CREATE ROLE ledger_app LOGIN PASSWORD :'app_pw';
CREATE DATABASE ledger OWNER ledger;
REVOKE ALL ON DATABASE ledger FROM PUBLIC;
\connect ledger
-- PostgreSQL 15+ no longer lets PUBLIC create in schema public; the owner needs to.
ALTER SCHEMA public OWNER TO ledger;
SQL
