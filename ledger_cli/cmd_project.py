"""``ledger project``, ``ledger status`` and ``ledger rebuild``: running the read side."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

import observability
from ledger.errors import LedgerError
from ledger.settings import LedgerSettings
from ledger.store.checkpoints import create_checkpoint
from ledger.store.reader import head_position
from ledger_cli import runtime
from ledger_cli.gc_tuning import tune_for_throughput
from ledger_cli.progress import Progress, say
from projections import registry
from projections.runtime import catalog
from projections.runtime.parallel import build_in_parallel
from projections.runtime.rebuild import build_together, switch_built, table_checksums
from projections.runtime.runner import ProjectionRunner

log = logging.getLogger(__name__)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    project = subparsers.add_parser("project", help="run the projections (read models)")
    project.add_argument("names", nargs="*", help="projections to run (default: all)")
    project.add_argument("--once", action="store_true", help="process until caught up, then exit")
    project.add_argument("--batch-size", type=int, default=2000)
    project.add_argument(
        "--rules", type=Path, metavar="FILE",
        help="the discrepancy engine's rule-set file (default: LEDGER_DISCREPANCY_RULESET, "
        "else the shipped rule set); validated before anything runs",
    )
    project.set_defaults(handler=run_project)

    status = subparsers.add_parser("status", help="projection status, positions and lag")
    status.set_defaults(handler=run_status)

    rebuild_parser = subparsers.add_parser(
        "rebuild", help="rebuild a projection into new tables, then switch readers to them"
    )
    rebuild_parser.add_argument("names", nargs="*", help="projections to rebuild")
    rebuild_parser.add_argument("--all", action="store_true", help="rebuild every projection")
    rebuild_parser.add_argument("--batch-size", type=int, default=5000)
    rebuild_parser.add_argument(
        "--jobs", type=int, default=1,
        help="processes to build in (projections are split across them by cost; the ledger"
        " is read once per process); e.g. the number of spare cores",
    )
    rebuild_parser.set_defaults(handler=run_rebuild)


def run_project(args: argparse.Namespace, settings: LedgerSettings) -> int:
    # Built first: an invalid rule-set file stops the command before it touches anything.
    projections = registry.build(args.names or None,
                                 ruleset=args.rules or settings.discrepancy_ruleset)
    params = runtime.database(settings)
    tune_for_throughput()
    if not args.once:
        observability.start_process_metrics(settings, "project", conninfo=params.conninfo)
    if args.once:
        summary: dict[str, Any] = {}
        for projection in projections:
            with ProjectionRunner(params.conninfo, projection, batch_size=args.batch_size) as run:
                stats = run.run_until_caught_up()
            summary[projection.name] = {"events": stats.events, "position": stats.position}
            say(f"{projection.name}: caught up at position {stats.position} "
                f"({stats.events} events in {stats.batches} batches)")
        print(json.dumps(summary))
        return 0
    stop = threading.Event()
    checkpointer = threading.Thread(
        target=anchor_periodically, name="checkpoints",
        args=(params.conninfo, stop, settings.checkpoint_interval,
              settings.checkpoint_every_seconds), daemon=True)
    checkpointer.start()
    return follow(params.conninfo, projections, batch_size=args.batch_size, stop=stop)


def anchor_periodically(conninfo: str, stop: threading.Event, every_events: int,
                        every_seconds: float) -> None:
    """Global checkpoints at the configured interval: whenever ``every_events`` accumulated
    (checked every few seconds), and at least every ``every_seconds`` when anything is new."""
    last = time.monotonic()
    while not stop.wait(min(5.0, every_seconds)):
        try:
            due = time.monotonic() - last >= every_seconds
            checkpoint = create_checkpoint(conninfo, min_events=1 if due else every_events)
        except psycopg.Error as exc:  # the database is away: try again next round
            log.warning("checkpoint not created: %s", exc)
            continue
        if checkpoint is not None:
            last = time.monotonic()
            log.info("checkpoint %s anchors %s events up to position %s",
                     checkpoint.checkpoint_id, checkpoint.event_count,
                     checkpoint.last_notification_id)


def follow(conninfo: str, projections: list, *, batch_size: int = 2000,
           stop: threading.Event | None = None) -> int:
    """Run every projection on its own thread until SIGINT/SIGTERM (or ``stop``)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    failures: list[str] = []

    def work(projection: Any) -> None:
        try:
            with ProjectionRunner(conninfo, projection, batch_size=batch_size) as runner:
                runner.run_forever(stop)
        except Exception as exc:  # fail and stop: this projection only, loudly
            log.error("projection %s stopped: %s", projection.name, exc)
            failures.append(projection.name)

    threads = [threading.Thread(target=work, args=(p,), name=p.name) for p in projections]
    for thread in threads:
        thread.start()
    say(f"projecting {', '.join(p.name for p in projections)} (Ctrl-C to stop)")
    for thread in threads:
        thread.join()
    return 1 if failures else 0


def run_status(args: argparse.Namespace, settings: LedgerSettings) -> int:
    params = runtime.database(settings)
    with psycopg.connect(params.conninfo) as conn:
        rows = catalog.statuses(conn)
    for row in rows:
        error = f" error: {row['error']}" if row["error"] else ""
        say(f"{row['projection']:<22} {row['status']:<10} position {row['position']:>10} "
            f"lag {row['lag_events']} events / {row['lag_seconds']:.1f} s{error}")
    print(json.dumps(rows, default=str))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def run_rebuild(args: argparse.Namespace, settings: LedgerSettings) -> int:
    if bool(args.names) == args.all:
        raise LedgerError("name the projections to rebuild, or pass --all (not both)")
    params = runtime.database(settings)
    tune_for_throughput()
    projections = registry.build(args.names or None, ruleset=settings.discrepancy_ruleset)
    say(f"rebuilding {', '.join(p.name for p in projections)}"
        + (f" in up to {args.jobs} processes" if args.jobs > 1 else "") + " ...")
    if args.jobs > 1:
        built = build_in_parallel(params.conninfo, projections, jobs=args.jobs,
                                  batch_size=args.batch_size)
    else:
        with psycopg.connect(params.conninfo) as conn:
            head = head_position(conn)
        progress = Progress("rebuild (position)")
        built = build_together(params.conninfo, projections, batch_size=args.batch_size,
                               progress=lambda position: progress.update(position, head))
        progress.finish()
    results = {}
    by_name = {projection.name: projection for projection in projections}
    for result in switch_built(params.conninfo, projections, built):
        results[result.projection] = {
            "generation": result.new_generation, "replaced": result.old_generation,
            "events": result.events, "resumed": result.resumed,
            "checksums": table_checksums(params.conninfo, by_name[result.projection]),
        }
        say(f"{result.projection}: generation {result.new_generation} active "
            f"({result.events} events{', resumed' if result.resumed else ''})")
    print(json.dumps(results))
    return 0
