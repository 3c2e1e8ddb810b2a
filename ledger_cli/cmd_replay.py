"""``ledger replay``: step through an incident as it happened, or as it was known at a moment."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from ledger.contract import parse_event
from ledger.settings import LedgerSettings
from ledger.store import Incoming, Origin
from ledger.store.event_store import EventStore
from ledger_cli import runtime
from ledger_cli.progress import say
from projections.replay.engine import Replay, load_records
from projections.replay.export import export_package
from projections.replay.findings import load_findings
from projections.replay.render import to_html, to_json, to_text
from projections.replay.selection import SelectionError, select


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
    params = runtime.database(settings)
    start, end, at = _aware(args.start), _aware(args.end), _aware(args.at)
    with psycopg.connect(params.conninfo) as conn:
        try:
            selection = select(conn, patient=args.patient, episode=args.episode, pump=args.pump,
                               channel=args.channel, order=args.order, facility=args.facility)
        except SelectionError as exc:
            say(f"ledger replay: {exc}")
            return 2
        findings = load_findings(conn, selection.episode_ids, selection.streams)
        replay = Replay(findings)
        frames = replay.frames(load_records(conn, selection.streams, until=end))
        frames = [f for f in frames if start is None or f.occurred_at >= start.isoformat()]
        extra = {}
        if at is not None:
            extra["as_of"] = _as_of(conn, selection.streams, at)
        documents = {
            "text": to_text(selection.label, frames),
            "json": to_json(selection.label, frames, extra),
            "html": to_html(selection.label, frames),
        }
        if args.export:
            summary = export_package(conn, args.export, selection.streams, {
                "report.html": documents["html"], "timeline.json": documents["json"],
                "report.txt": documents["text"]}, ruleset=None)
            say(f"incident package: {summary}")
    output = documents[args.format]
    if args.out:
        args.out.write_text(output)
        say(f"wrote {args.out}")
    else:
        sys.stdout.write(output)
    _audit(params, settings, args, selection.label)
    return 0


def _as_of(conn: psycopg.Connection, streams: set[str], at: datetime) -> dict:
    """The state at ``at`` as it happened (device clock) and as it was known (ledger clock)."""
    states = {}
    for clock in ("occurred", "recorded"):
        replay = Replay()
        frames = replay.frames(load_records(conn, streams, until=at, clock=clock))
        states[clock] = {"events": len(frames),
                         "state": replay.snapshot(at) if frames else None}
    states["late_data"] = states["occurred"] != states["recorded"]
    return states


def _audit(params, settings: LedgerSettings, args: argparse.Namespace, label: str) -> None:
    """Replays are reads of patient-level data: each one is recorded in the ledger."""
    actor = args.actor or getpass.getuser()
    event = parse_event({
        "event_id": str(uuid.uuid4()), "type": "access.recorded", "schema_version": 1,
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
    del settings
