"""Benchmark: rebuilding every projection from the ledger, against a raw SELECT, plus freshness.

1. Builds a ledger of N realistic events (default 500k) through the ledger's append path.
2. Rebuilds all projections (infusions, alarms, ders, ...) from position 0 into new table
   generations — median of 3 — and, in the same run, reads the same events with a raw keyset
   SELECT and JSON decoding (the baseline).
3. Freshness: appends at a steady 500 events/s while `ledger project` follows, and measures
   event appended → visible in ``infusion_state`` (p50/p99).

    python bench/rebuild.py [--events 500000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.build_ledger import build
from bench.common import emit, machine, median_of, throwaway_database
from bench.workload import events
from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger_cli.gc_tuning import tune_for_throughput
from projections import registry
from projections.runtime.parallel import build_in_parallel
from projections.runtime.rebuild import switch_built
from projections.runtime.runner import ProjectionRunner


def raw_select(conninfo: str) -> float:
    with psycopg.connect(conninfo) as conn:
        started, after, total = time.perf_counter(), 0, 0
        while True:
            rows = conn.execute(
                "SELECT notification_id, state FROM ledger_events WHERE notification_id > %s"
                " ORDER BY notification_id LIMIT 5000", (after,)).fetchall()
            if not rows:
                break
            for row in rows:
                json.loads(row[1])
            total += len(rows)
            after = rows[-1][0]
        return total / (time.perf_counter() - started)


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the rebuild's workers)."""
    own, children = (resource.getrusage(who)
                     for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rebuild_all(conninfo: str, count: int, jobs: int, cpu: list[float]) -> float:
    """What `ledger rebuild --all --jobs N` does: build every projection (split across N
    processes, the ledger read once per process), then switch the views. Appends the
    client CPU per event (us) to ``cpu``: on a shared machine it is steadier than the rate."""
    projections = registry.build()
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    built = build_in_parallel(conninfo, projections, jobs=jobs, batch_size=5000)
    switch_built(conninfo, projections, built)
    cpu.append((_cpu_seconds() - cpu_started) * 1e6 / count)
    return count / (time.perf_counter() - started)


def freshness(params: ConnectionParams, seconds: float, rate: int = 500) -> list[float]:
    """Append at ``rate``/s while projections follow; latency append → visible (ms)."""
    stop = threading.Event()
    runners = [ProjectionRunner(params.conninfo, p) for p in registry.build(["infusions"])]
    threads = [threading.Thread(target=r.run_forever, args=(stop,)) for r in runners]
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    source = events(int(seconds * rate), seed=99, pumps=50)
    with EventStore(params) as store, psycopg.connect(params.conninfo, autocommit=True) as conn:
        batch_every = 0.05  # 25 events every 50 ms
        per_batch = int(rate * batch_every)
        deadline = time.perf_counter()
        for _ in range(int(seconds / batch_every)):
            batch = [Incoming(parse_event(json.dumps(next(source))), Origin("kafka", "f"))
                     for _ in range(per_batch)]
            appended = store.append(batch)
            committed = time.perf_counter()
            last = max(r.notification_id or 0 for r in appended)
            while conn.execute("SELECT notification_id FROM projection_generations WHERE"
                               " projection = 'infusions' AND state = 'active'"
                               ).fetchone()[0] < last:  # type: ignore[index]
                time.sleep(0.002)
            latencies.append((time.perf_counter() - committed) * 1000)
            deadline += batch_every
            time.sleep(max(0.0, deadline - time.perf_counter()))
    stop.set()
    for thread in threads:
        thread.join()
    for runner in runners:
        runner.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--freshness-seconds", type=float, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="rebuild processes (default: one per core)")
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    with throwaway_database(args.database_url) as params:
        append_rate = build(params, args.events)
        print(f"built a ledger of {args.events:,} events ({append_rate:,.0f}/s)", file=sys.stderr)
        with psycopg.connect(params.conninfo, autocommit=True) as conn:
            conn.execute("ANALYZE ledger_events")
        tune_for_throughput()  # as `ledger rebuild` does
        cpu: list[float] = []
        rate = median_of(args.runs,
                         lambda _: rebuild_all(params.conninfo, args.events, args.jobs, cpu),
                         "rebuild all projections")
        baseline = median_of(args.runs, lambda _: raw_select(params.conninfo),
                             "raw SELECT + JSON decode")
        latencies = sorted(freshness(params, args.freshness_seconds))
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"rebuild {rate:,.0f} events/s vs raw SELECT {baseline:,.0f} events/s; freshness at"
          f" 500 events/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms; rebuild client CPU"
          f" {statistics.median(cpu):.0f} us/event (load {os.getloadavg()[0]:.2f})",
          file=sys.stderr)
    emit({"bench": "rebuild", "events": args.events, "events_per_s": round(rate),
          "baseline": "pg_select", "baseline_events_per_s": round(baseline),
          "ratio": round(rate / baseline, 3), "freshness_p50_ms": round(p50, 1),
          "freshness_p99_ms": round(p99, 1), "jobs": args.jobs,
          "client_cpu_us_per_event": round(statistics.median(cpu), 1), "machine": machine()})


if __name__ == "__main__":
    main()
