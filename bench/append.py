"""Benchmark: the ledger's idempotent batch append against a raw COPY of the same rows.

Appends N realistic, already-validated events through ``EventStore.append`` in batches (by
default the product's file-import batch, ``LEDGER_APPEND_BATCH_SIZE`` = 2,000; pass
``--batch 500`` for the Kafka consumer's batch, whose end-to-end path bench/ingest.py
measures), into a fresh database each repetition — with dedupe, stream
versions, hash chains and source positions, in one transaction per batch — and, in the same
run on the same server, COPYs the same events into a plain table. Medians of 3.

    python bench/append.py [--events 100000] [--batch 2000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import copy_baseline, emit, machine, median_of, throwaway_database
from bench.workload import events
from ledger.contract import parse_event
from ledger.settings import LedgerSettings
from ledger.store import Incoming, Origin, SourcePosition
from ledger.store.event_store import EventStore
from ledger.store.streams import stream_id, stream_key
from ledger_cli.gc_tuning import tune_for_throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=LedgerSettings().append_batch_size)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None,
                        help="server to use (a database is created there)")
    args = parser.parse_args()

    print(f"machine: {machine()}", file=sys.stderr)
    started = time.perf_counter()
    raw = [json.dumps(e).encode() for e in events(args.events)]
    parsed = [parse_event(line) for line in raw]
    parse_rate = len(raw) / (time.perf_counter() - started)
    print(f"generated and validated {len(parsed):,} events ({parse_rate:,.0f}/s)", file=sys.stderr)
    items = [Incoming(e, Origin("kafka", f"bench:0:{i}")) for i, e in enumerate(parsed)]
    # The harness holds all N events in memory at once, which a consumer never does (it
    # holds one batch); tune the collector as `ledger consume` does, so the figure is the
    # append path's and not the cost of re-scanning the harness's own workload.
    tune_for_throughput()

    def append_once(_: int) -> float:
        with throwaway_database(args.database_url) as params, EventStore(params) as store:
            started = time.perf_counter()
            for offset in range(0, len(items), args.batch):
                batch = items[offset : offset + args.batch]
                store.append(batch, [SourcePosition("bench", "bench", 0, offset + len(batch))])
            return len(items) / (time.perf_counter() - started)

    rate = median_of(args.runs, append_once, "ledger append")

    versions: dict[str, int] = {}
    rows = []
    for event, line in zip(parsed, raw, strict=True):
        key = stream_key(event)
        versions[key] = versions.get(key, 0) + 1
        rows.append((stream_id(key), versions[key], event.type, event.occurred_at, line.decode()))
    with throwaway_database(args.database_url) as params:
        baseline = median_of(args.runs, lambda _: copy_baseline(params, rows), "raw COPY")

    ratio = rate / baseline
    print(f"append {rate:,.0f} events/s vs raw COPY {baseline:,.0f} events/s: ratio {ratio:.3f}",
          file=sys.stderr)
    emit({"bench": "append", "events": args.events, "events_per_s": round(rate),
          "baseline": "pg_copy", "baseline_events_per_s": round(baseline),
          "ratio": round(ratio, 3), "batch": args.batch, "machine": machine()})


if __name__ == "__main__":
    main()
