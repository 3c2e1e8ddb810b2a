"""``ledger replay``: step through an incident as it happened, or as it was known at a moment."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from ledger.contract import parse_event
from ledger.ids import uuid7
from ledger.settings import LedgerSettings
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger_cli import runtime
from ledger_cli.progress import say
from projections.discrepancies.ruleset import DEFAULT_PATH, RuleSetError
from projections.replay.export import export_package
from projections.replay.report import ReplayRequest, build, document
from projections.replay.selection import SelectionError
from projections.replay.whatif import load_rules


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="replay an incident event by event")
    who = parser.add_argument_group("selection (one of)")
    who.add_argument("--patient")
    who.add_argument("--episode")
    who.add_argument("--pump")
    who.add_argument("--channel")
    who.add_argument("--order")
    who.add_argument("--facility")
    parser.add_argument("--from", dest="start", type=datetime.fromisoformat,
                        help="first moment shown (RFC 3339)")
    parser.add_argument("--to", dest="end", type=datetime.fromisoformat,
                        help="last moment shown (RFC 3339)")
    parser.add_argument("--at", type=datetime.fromisoformat,
                        help="show the state at this instant, as happened and as known")
    parser.add_argument("--rules", type=Path, metavar="FILE",
                        help="what-if: re-run the discrepancy rules with this rule-set file "
                             "over the window and show the findings that would differ "
                             "(in memory; stored findings are untouched)")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--out", type=Path, help="write the output here instead of stdout")
    parser.add_argument("--export", type=Path, help="write an incident package to this folder")
    parser.add_argument("--actor", default=None, help="who is replaying (for the audit record)")
    parser.set_defaults(handler=run)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise SystemExit("ledger replay: times need an offset, e.g. 2026-03-14T02:14:00Z")
    return moment


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    # The rule set the projection judges with (a site's file, or the shipped one): the
    # what-if baseline, and the rule set an incident package carries.
    in_force_path = settings.discrepancy_ruleset or DEFAULT_PATH
    try:
        # Checked before the database is touched: a typo in a rule file costs nothing.
        rules = load_rules(args.rules)[0] if args.rules else None
        in_force = load_rules(in_force_path)[0] if args.rules or args.export else None
    except RuleSetError as exc:
        say(f"ledger replay: {exc}")
        return 2
    request = ReplayRequest(
        patient=args.patient, episode=args.episode, pump=args.pump, channel=args.channel,
        order=args.order, facility=args.facility, start=_aware(args.start),
        end=_aware(args.end), at=_aware(args.at), rules=rules, baseline=in_force)
    params = runtime.database(settings)
    with psycopg.connect(params.conninfo) as conn:
        try:
            report = build(conn, request)
        except SelectionError as exc:
            say(f"ledger replay: {exc}")
            return 2
        output = document(report, args.format)
        if args.export:
            documents = {"report.html": document(report, "html"),
                         "timeline.json": document(report, "json"),
                         "report.txt": document(report, "text")}
            if args.rules:
                # The candidate exactly as read, so the what-if can be re-run elsewhere.
                documents["whatif-ruleset.json"] = args.rules.read_text(encoding="utf-8")
            summary = export_package(conn, args.export, report.selection.streams, documents,
                                     ruleset=json.loads(in_force_path.read_text("utf-8")))
            say(f"incident package: {summary}")
    if args.out:
        args.out.write_text(output)
        say(f"wrote {args.out}")
    else:
        sys.stdout.write(output)
    _audit(params, args, report.selection.label)
    return 0


def _audit(params: ConnectionParams, args: argparse.Namespace, label: str) -> None:
    """Replays are reads of patient-level data: each one is recorded in the ledger."""
    actor = args.actor or getpass.getuser()
    event = parse_event({
        "event_id": str(uuid7()), "type": "access.recorded", "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": {"system": "ledger-cli", "kind": "other"},
        "subject": {k: v for k, v in (("patient_id", args.patient), ("order_id", args.order),
                                      ("pump_id", args.pump), ("facility_id", args.facility))
                    if v},
        "actor": {"id": actor, "role": "system"},
        "data": {"key_id": f"cli:{actor}", "role": "safety_officer", "endpoint": "ledger replay",
                 "query": label, "patient_ids": [args.patient] if args.patient else [],
                 "outcome": "allowed"},
    }, allow_internal=True)
    with EventStore(params, pool_size=1) as store:
        store.append([Incoming(event, Origin("internal", "ledger replay"))])
