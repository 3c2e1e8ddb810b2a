"""Benchmark: a 10,000-event pump-channel stream read and folded "as of" a moment, both clocks.

Builds one channel that reports status every 10 s for ~28 hours (10,000 events, appended
in batches of 100 so the ledger clock moves between them; in one batch in ten, a few
readings arrive with the next batch, so the two clocks really differ), runs the infusions
projection with its default snapshots, then times ``state_as_of`` (connect, nearest
snapshot, the events after it, the fold) at moments just before a snapshot is due (the
most events to fold) and at the end, by each clock; medians of 3 per moment, the worst
moment reported. The baseline, from the same run, is a plain SELECT of the same stream's
rows up to the same moment (all of them, from version 1: what a read without snapshots
would fetch).

    python bench/asof.py [--events 10000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import emit, machine, throwaway_database
from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.event_store import EventStore
from ledger.store.reader import Clock
from ledger.store.streams import stream_id
from projections.infusions.projection import InfusionsProjection
from projections.runtime.asof import state_as_of
from projections.runtime.runner import SNAPSHOT_EVERY, ProjectionRunner

START = datetime(2026, 3, 14, 0, 0, tzinfo=UTC)
SUBJECT = {"facility_id": "F", "patient_id": "MRN-1", "order_id": "ORD-1", "pump_id": "P1",
           "channel": "A"}
STREAM = "channel:F:P1:A"
HEPARIN = {"code": "235473", "name": "heparin 25,000 units in 250 mL D5W"}
BATCH = 100  # events per append: the ledger clock's resolution for "as known at"
LATE_EVERY = 10  # one batch in ten has readings that arrive with the next batch
LATE_READINGS = 5


def _event(kind: str, at: datetime, data: dict[str, Any]) -> Any:
    return parse_event(json.dumps({
        "event_id": str(uuid.uuid4()), "type": kind, "schema_version": 1,
        "occurred_at": at.isoformat(), "source": {"system": "bench", "kind": "pump_gateway"},
        "subject": SUBJECT, "data": data}))


def channel_stream(count: int) -> list[Any]:
    """A heparin infusion: programmed, started, then a status report every 10 s."""
    rate = {"value": "14.4", "unit": "mL/h"}
    events = [
        _event("program.confirmed", START, {"mode": "auto", "medication": HEPARIN,
                                            "rate": rate, "library_mode": "library"}),
        _event("infusion.started", START, {"rate": rate}),
    ]
    for tick in range(1, count - 1):
        events.append(_event("infusion.status_reported", START + timedelta(seconds=10 * tick), {
            "state": "infusing", "rate": rate,
            "volume_infused": {"value": f"{tick * 0.04:.2f}", "unit": "mL"}}))
    return events


def arrival_batches(events: list[Any]) -> list[list[Any]]:
    """Batches in arrival order: every LATE_EVERY-th batch's last readings come one batch late."""
    batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
    for n in range(LATE_EVERY - 1, len(batches) - 1, LATE_EVERY):
        late, batches[n] = batches[n][-LATE_READINGS:], batches[n][:-LATE_READINGS]
        batches[n + 1] = batches[n + 1] + late
    return batches


def raw_select(conninfo: str, at: datetime, clock: Clock) -> float:
    """Raw PostgreSQL: connect and SELECT the stream's rows up to ``at`` (ms)."""
    column = "recorded_at" if clock == "recorded" else "occurred_at"
    started = time.perf_counter()
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT notification_id, stream, originator_version, topic, event_id, occurred_at,"
            " received_at, recorded_at, hash, state FROM ledger_events WHERE originator_id = %s"
            f" AND {column} <= %s ORDER BY originator_version",
            (stream_id(STREAM), at)).fetchall()
    assert rows
    return (time.perf_counter() - started) * 1000


def median_ms(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    projection = InfusionsProjection()
    with throwaway_database(args.database_url) as params:
        events = channel_stream(args.events)
        # The ledger clock after each batch: "as known at" moments between batches.
        known: list[datetime] = []
        with EventStore(params) as store:
            for batch in arrival_batches(events):
                store.append([Incoming(e, Origin("kafka", "bench")) for e in batch])
                time.sleep(0.002)  # distinct recorded_at per batch
                known.append(datetime.now(UTC))
        with ProjectionRunner(params.conninfo, projection) as runner:
            runner.run_until_caught_up()
        with psycopg.connect(params.conninfo) as conn:
            conn.execute("ANALYZE")
        print(f"built a {args.events:,}-event stream, snapshots every {SNAPSHOT_EVERY}",
              file=sys.stderr)

        # The worst moments fold the most events after the nearest usable snapshot: for
        # "as known", the ledger-clock mark in each quarter with the most events past a
        # snapshot boundary; for "as happened", just before a snapshot version is reached.
        moments: list[tuple[Clock, datetime]] = []
        with psycopg.connect(params.conninfo) as conn:
            counts = [conn.execute("SELECT count(*) FROM ledger_events WHERE recorded_at <= %s",
                                   (mark,)).fetchone()[0] for mark in known]  # type: ignore[index]
        quarter = len(known) // 4 or 1
        for start in (quarter, 2 * quarter, len(known) - quarter):
            window = range(start, min(start + quarter, len(known)))
            best = max(window, key=lambda i: counts[i] % SNAPSHOT_EVERY)
            moments.append(("recorded", known[best]))
        for tick in (args.events // 4, args.events // 2, args.events - 3):
            # Version = tick + 2 (program, start): the last tick before a snapshot version.
            last_before_snapshot = tick - tick % SNAPSHOT_EVERY - 3
            at = START + timedelta(seconds=10 * max(last_before_snapshot, 1), milliseconds=500)
            moments.append(("occurred", at))

        worst: dict[str, float] = {}
        baseline: dict[str, float] = {}
        folded: dict[str, int] = {}
        for clock, at in moments:
            result = state_as_of(params.conninfo, projection, STREAM, at, clock)
            if not result.state:
                raise SystemExit(f"as of {at} by {clock}: empty state")

            def once(at: datetime = at, clock: Clock = clock) -> float:
                started = time.perf_counter()
                state_as_of(params.conninfo, projection, STREAM, at, clock)
                return (time.perf_counter() - started) * 1000

            ms = median_ms(args.runs, once)
            raw = median_ms(args.runs, lambda at=at, clock=clock: raw_select(  # type: ignore[misc]
                params.conninfo, at, clock))
            print(f"  as of {at.isoformat()} by {clock}: {ms:.1f} ms (snapshot at version"
                  f" {result.from_snapshot_version}, {len(result.folded)} events folded);"
                  f" raw SELECT {raw:.1f} ms", file=sys.stderr, flush=True)
            if ms > worst.get(clock, -1.0):
                worst[clock], baseline[clock] = ms, raw
                folded[clock] = len(result.folded)
    slowest = max(worst, key=worst.__getitem__)
    ms, raw = worst[slowest], baseline[slowest]
    print(f"as-of read of a {args.events:,}-event stream: worst {ms:.1f} ms (recorded"
          f" {worst['recorded']:.1f}, occurred {worst['occurred']:.1f}) vs raw SELECT"
          f" {raw:.1f} ms", file=sys.stderr)
    emit({"bench": "asof", "events": args.events, "ms": round(ms, 1),
          "recorded_ms": round(worst["recorded"], 1), "occurred_ms": round(worst["occurred"], 1),
          "folded_events": folded[slowest], "baseline": "pg_select",
          "baseline_ms": round(raw, 1), "ratio": round(ms / raw, 3), "machine": machine()})


if __name__ == "__main__":
    main()
