"""Benchmark: `ledger verify` (every hash chain and checkpoint recomputed) over N events.

Builds a ledger of N realistic events (appended through the ledger, checkpointed every
10,000), then times a full verification 3 times and reports the median, beside two raw
keyset SELECTs of the same rows from the same run as baselines: text format (the figure
reported since the first run) and binary format (what verify itself fetches). ``--deep``
times the deep verification (every record decoded and re-validated against the contract)
instead of the default one.

    python bench/verify.py [--events 100000] [--deep] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import emit, machine, median_of, throwaway_database
from bench.workload import events
from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.checkpoints import create_checkpoint
from ledger.store.event_store import EventStore
from ledger.store.verify import verify


def raw_select(conninfo: str, *, binary: bool = False) -> float:
    """Raw PostgreSQL: page through the same columns, no hashing, no decoding (events/s)."""
    with psycopg.connect(conninfo) as conn:
        started = time.perf_counter()
        after, total = 0, 0
        while True:
            rows = conn.cursor(binary=binary).execute(
                "SELECT notification_id, originator_id, originator_version, topic, event_id,"
                " stream, state, hash FROM ledger_events WHERE notification_id > %s"
                " ORDER BY notification_id LIMIT 10000", (after,)).fetchall()
            if not rows:
                break
            total += len(rows)
            after = rows[-1][0]
        return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deep", action="store_true",
                        help="time the deep verification (records re-validated)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    with throwaway_database(args.database_url) as params:
        with EventStore(params) as store:
            batch: list[Incoming] = []
            for n, raw in enumerate(events(args.events)):
                batch.append(Incoming(parse_event(json.dumps(raw)), Origin("kafka", f"b:0:{n}")))
                if len(batch) == 1000:
                    store.append(batch)
                    batch = []
                    if n % 10_000 == 9_999:
                        create_checkpoint(params.conninfo)
            if batch:
                store.append(batch)
        # As autovacuum would have by the time a nightly verify runs: otherwise the first
        # timed reader pays for setting hint bits on every freshly written row (dirtying
        # every page), and the baselines measured after it do not.
        with psycopg.connect(params.conninfo, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) ledger_events")
        print(f"built a ledger of {args.events:,} events", file=sys.stderr)

        def once(_: int) -> float:
            started = time.perf_counter()
            report = verify(params.conninfo, deep=args.deep)
            elapsed = time.perf_counter() - started
            if not report.ok or report.verified_events != args.events:
                raise SystemExit(f"verify disagreed: {report.summary()}")
            return report.verified_events / elapsed

        label = "verify --deep" if args.deep else "verify"
        rate = median_of(args.runs, once, label)
        baseline = median_of(args.runs, lambda _: raw_select(params.conninfo), "raw SELECT")
        binary = median_of(args.runs, lambda _: raw_select(params.conninfo, binary=True),
                           "raw binary SELECT")
    print(f"{label} {rate:,.0f} events/s vs raw SELECT {baseline:,.0f} events/s (binary"
          f" {binary:,.0f})", file=sys.stderr)
    emit({"bench": "verify", "deep": args.deep, "events": args.events,
          "events_per_s": round(rate), "baseline": "pg_select",
          "baseline_events_per_s": round(baseline), "ratio": round(rate / baseline, 3),
          "binary_baseline_events_per_s": round(binary), "binary_ratio": round(rate / binary, 3),
          "machine": machine()})


if __name__ == "__main__":
    main()
