"""``ledger demo``: the whole pipeline on embedded defaults, in one command.

Starts (or reuses) the embedded PostgreSQL, migrates, appends the bundled example (an
ICU heparin infusion: order, auto-program with a DERS override, start, occlusion alarm,
pause/resume, titration, documentation, stop), runs every projection until caught up,
anchors a checkpoint and verifies the hash chains, then prints what the read models show.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from ledger.settings import LedgerSettings
from ledger.store.checkpoints import create_checkpoint
from ledger.store.event_store import EventStore
from ledger.store.verify import verify
from ledger_cli import runtime
from ledger_cli.cmd_import import import_file
from ledger_cli.progress import say
from projections import registry
from projections.runtime.runner import ProjectionRunner

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "heparin-story.ndjson"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline on embedded defaults")
    parser.add_argument("--file", type=Path, default=EXAMPLE, help="NDJSON events to ingest")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    say(f"database: {params.url()}")
    with EventStore(params, pool_size=settings.pool_size) as store:
        counts = import_file(store, args.file)
    say(f"ingested {args.file.name}: {counts['appended']} appended, "
        f"{counts['duplicates']} duplicates (already stored), {counts['rejected']} rejected")
    for projection in registry.build():
        with ProjectionRunner(params.conninfo, projection) as runner:
            stats = runner.run_until_caught_up()
        say(f"projection {projection.name}: caught up at position {stats.position}")
    checkpoint = create_checkpoint(params.conninfo)
    if checkpoint:
        say(f"checkpoint {checkpoint.checkpoint_id} anchors {checkpoint.event_count} events")
    report = verify(params.conninfo)
    say(f"verify: {report.verified_events} events in {report.streams} streams, "
        f"{'intact' if report.ok else 'NOT INTACT'}")
    with psycopg.connect(params.conninfo, row_factory=dict_row) as conn:
        infusions = conn.execute(
            "SELECT pump_id, channel, patient_id, unit, bed, medication_name, status,"
            " current_rate, current_rate_unit, linked_order_id, ordered_dose, ordered_dose_unit"
            " FROM infusion_state ORDER BY first_position").fetchall()
        alarms = conn.execute("SELECT alarm_id, code, priority, seconds_to_acknowledge"
                              " FROM alarms ORDER BY raised_at").fetchall()
    for row in infusions:
        say(f"  infusion {row['pump_id']}/{row['channel']} {row['medication_name']} for "
            f"{row['patient_id']} ({row['unit']} bed {row['bed']}): {row['status']} at "
            f"{row['current_rate']} {row['current_rate_unit'] or ''}; order "
            f"{row['linked_order_id']} ({row['ordered_dose']} {row['ordered_dose_unit']})")
    for row in alarms:
        say(f"  alarm {row['alarm_id']} {row['code']} ({row['priority']}): acknowledged after "
            f"{row['seconds_to_acknowledge']} s")
    say("next: `ledger status`, `ledger verify`, `ledger checkpoint export FILE`")
    print(json.dumps({**counts, "infusions": len(infusions), "alarms": len(alarms),
                      "verified": report.ok}))
    return 0 if report.ok else 2
