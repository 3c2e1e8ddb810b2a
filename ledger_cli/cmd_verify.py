"""``ledger verify`` and ``ledger checkpoint create|export``: the tamper evidence commands."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import observability
from ledger.settings import LedgerSettings
from ledger.store.checkpoints import create_checkpoint, export_checkpoints, read_export
from ledger.store.verify import verify
from ledger_cli import runtime
from ledger_cli.progress import Progress, say

EXIT_TAMPERED = 2


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="recompute every hash chain and checkpoint; exit 2 when anything is off",
        description=(
            "Recompute every stream's hash chain and versions and every checkpoint, and check"
            " that each event's columns (stream, version, type, event id, and the clocks"
            " occurred_at, received_at, recorded_at, compared as instants) agree with its"
            " hashed record. --deep also re-validates every record against the contract"
            " (about four times slower). See docs/tamper-evidence.md section 5."
        ),
    )
    parser.add_argument(
        "--checkpoints", type=Path, default=None,
        help="a checkpoint export kept outside the system, to compare the database with",
    )
    parser.add_argument(
        "--deep", action="store_true",
        help="also decode every record and re-validate its event against the contract, to"
        " catch a record that is no valid event yet carries a recomputed hash (about four"
        " times slower; the default is what runs nightly)",
    )
    parser.set_defaults(handler=run_verify)

    checkpoint = subparsers.add_parser("checkpoint", help="global checkpoints")
    actions = checkpoint.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="anchor everything appended since the last one")
    create.add_argument("--min-events", type=int, default=1)
    create.set_defaults(handler=run_create)
    export = actions.add_parser("export", help="write all checkpoints to a JSON file")
    export.add_argument("file", type=Path)
    export.add_argument("--no-create", action="store_true",
                        help="do not anchor the latest events first")
    export.set_defaults(handler=run_export)


def run_verify(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    exported = read_export(args.checkpoints) if args.checkpoints else None
    progress = Progress("verify")
    started = time.monotonic()
    report = verify(params.conninfo, exported=exported, progress=progress.update,
                    deep=args.deep)
    progress.finish()
    observability.record_verify(report.summary(), settings,
                                duration_seconds=time.monotonic() - started)
    for problem in report.problems[:50]:
        where = " ".join(
            f"{k}={v}" for k, v in (
                ("stream", problem.stream), ("version", problem.version),
                ("position", problem.notification_id),
            ) if v is not None
        )
        say(f"PROBLEM {problem.kind}: {problem.detail} [{where}]")
    if len(report.problems) > 50:
        say(f"... and {len(report.problems) - 50} more problems")
    if report.unanchored_events:
        say(f"{report.unanchored_events} events after the last checkpoint are not yet anchored")
    say(
        f"verified {report.verified_events} events in {report.streams} streams against "
        f"{report.checkpoints} checkpoints{' (deep)' if args.deep else ''}: "
        f"{'intact' if report.ok else 'NOT INTACT'} (access log: {report.access_records}"
        f" records in {report.access_seals} seals)"
    )
    print(json.dumps(report.summary(), default=str), flush=True)
    return 0 if report.ok else EXIT_TAMPERED


def run_create(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    checkpoint = create_checkpoint(params.conninfo, min_events=args.min_events)
    if checkpoint is None:
        say("nothing to anchor")
        print(json.dumps({"checkpoint": None}))
        return 0
    say(
        f"checkpoint {checkpoint.checkpoint_id}: {checkpoint.event_count} events "
        f"({checkpoint.after_notification_id}, {checkpoint.last_notification_id}]"
    )
    print(json.dumps(checkpoint.to_json()))
    return 0


def run_export(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    if not args.no_create:
        create_checkpoint(params.conninfo)
    document = export_checkpoints(
        params.conninfo, args.file, database_label=f"{params.host}/{params.dbname}",
        signing_key=settings.checkpoint_signing_key,
    )
    signed = "signed" if "signature" in document else "unsigned"
    say(f"wrote {len(document['checkpoints'])} checkpoints to {args.file} ({signed})")
    print(json.dumps({"file": str(args.file), "checkpoints": len(document["checkpoints"])}))
    return 0
