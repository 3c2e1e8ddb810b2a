"""``ledger discrepancies``: the findings, open and resolved, as one JSON array on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

import psycopg

from ledger.settings import LedgerSettings
from ledger_cli import runtime
from ledger_cli.progress import say
from projections.discrepancies.query import Filters, find


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give a time with an offset, e.g. ...Z")
    return moment


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "discrepancies", help="list discrepancy findings (JSON array on stdout)")
    parser.add_argument("--json", action="store_true",
                        help="JSON array on stdout (the default; logs go to stderr)")
    parser.add_argument("--severity", action="append", default=[], metavar="S1..S4")
    parser.add_argument("--rule", action="append", default=[], metavar="R01")
    parser.add_argument("--unit", action="append", default=[])
    parser.add_argument("--status", action="append", default=[],
                        help="open, resolved, confirmed, false_positive, accepted_risk")
    parser.add_argument("--facility")
    parser.add_argument("--patient")
    parser.add_argument("--since", type=_aware, help="detected at or after (RFC 3339)")
    parser.add_argument("--until", type=_aware, help="detected before (RFC 3339)")
    parser.add_argument("--limit", type=int)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    filters = Filters(severities=args.severity, rules=args.rule, units=args.unit,
                      statuses=args.status, facility=args.facility, patient=args.patient,
                      since=args.since, until=args.until, limit=args.limit)
    with psycopg.connect(params.conninfo) as conn:
        findings = find(conn, filters)
    say(f"{len(findings)} findings")
    sys.stdout.write(json.dumps(findings, default=str) + "\n")
    return 0
