"""Building what commands need from settings: the database (configured or embedded), migrated."""

from __future__ import annotations

import psycopg

from ledger.settings import LedgerSettings
from ledger.store.database import ConnectionParams, resolve_connection
from ledger.store.event_store import EventStore
from ledger.store.migrate import migrate
from ledger_cli.progress import say
from projections import registry
from projections.runtime import catalog


def database(settings: LedgerSettings, *, apply_migrations: bool = True) -> ConnectionParams:
    params = resolve_connection(settings.database_url, settings.data_dir, settings.database_name)
    if apply_migrations and settings.migrate_on_start:
        applied = migrate(params.conninfo)
        if applied:
            say(f"migrations applied: {', '.join(applied)}")
        ensure_read_models(params)
    return params


def ensure_read_models(params: ConnectionParams) -> None:
    """Every projection's active tables and views, created in dependency order (some views
    read others'), so readers and concurrently starting runners always find them."""
    with psycopg.connect(params.conninfo, autocommit=True) as conn:
        for projection in registry.build():
            catalog.ensure_active(conn, projection)


def event_store(settings: LedgerSettings) -> EventStore:
    return EventStore(database(settings), pool_size=settings.pool_size)
