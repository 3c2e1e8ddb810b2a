"""``ledger serve`` (the auditor query API) and ``ledger api-key create|list|revoke``.

``api-key create`` prints the new key alone on its last line of stdout — the only time it
is ever shown; the database keeps its SHA-256.
"""

from __future__ import annotations

import argparse
import json
import logging

import psycopg

from ledger.settings import LedgerSettings
from ledger_cli import runtime
from ledger_cli.progress import say
from projections.api.keys import Role, create_key, list_keys, revoke_key
from projections.api.serving import serve

log = logging.getLogger(__name__)
_ACTOR_ROLES = ("nurse", "pharmacist", "prescriber", "system", "device")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the auditor query API (HTTP, /v1)")
    serve.add_argument("--host", default=None, help="bind address (default LEDGER_API_HOST, "
                       "127.0.0.1)")
    serve.add_argument("--port", type=int, default=None,
                       help="port (default LEDGER_API_PORT, 8080)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1); the audit sealer runs once, in "
                       "the supervisor. With more than one, /metrics shows the figures of "
                       "the worker that answers the scrape")
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(handler=run_serve)

    keys = subparsers.add_parser("api-key", help="API keys of the query API")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; prints it on the last line")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--label", default=None, help="who or what holds the key")
    create.add_argument("--actor-id", default=None,
                        help="the person's id, written as `actor` on reviews they record")
    create.add_argument("--actor-role", default=None, choices=_ACTOR_ROLES)
    create.set_defaults(handler=run_create)
    actions.add_parser("list", help="list keys (never the secrets)").set_defaults(
        handler=run_list)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=run_revoke)


def run_serve(args: argparse.Namespace, settings: LedgerSettings) -> int:
    if args.workers < 1:
        raise SystemExit("--workers must be at least 1")
    params = runtime.database(settings)
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    say(f"auditor query API on http://{host}:{port}/v1 (OpenAPI at /openapi.json), "
        f"{args.workers} worker(s)")
    serve(settings, params, host=host, port=port, workers=args.workers,
          log_level=args.log_level)
    return 0


def run_create(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    with psycopg.connect(params.conninfo, autocommit=True) as conn:
        key_id, token = create_key(conn, Role(args.role), label=args.label,
                                   actor_id=args.actor_id, actor_role=args.actor_role)
    say(f"created {args.role} key {key_id}; it is shown once, below")
    print(token)
    return 0


def run_list(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    with psycopg.connect(params.conninfo) as conn:
        rows = list_keys(conn)
    for row in rows:
        state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
        say(f"{row['key_id']}  {row['role']:<15} {state:<18} {row['label'] or ''}")
    print(json.dumps(rows, default=str))
    return 0


def run_revoke(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    with psycopg.connect(params.conninfo, autocommit=True) as conn:
        revoked = revoke_key(conn, args.key_id)
    say(f"key {args.key_id} revoked" if revoked else f"no active key {args.key_id}")
    print(json.dumps({"key_id": args.key_id, "revoked": revoked}))
    return 0 if revoked else 1
