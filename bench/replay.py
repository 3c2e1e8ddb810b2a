"""Benchmark: replaying a 10-hour episode (status every 10 s) and a whole patient-day.

Builds one patient's day: a heparin episode on channel A with telemetry every 10 s for 10
hours (≈ 3,600 events), a second infusion on channel B, alarms, order and documentation
events; then times the replay of the episode and of the patient (selection, read, fold and
state after every event: what ``ledger replay`` and ``/v1/replay`` run before writing),
medians of 3, and separately the JSON document written from it.

    python bench/replay.py [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import emit, machine, throwaway_database
from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.event_store import EventStore
from projections import registry
from projections.replay.report import ReplayRequest, build, document
from projections.runtime.runner import ProjectionRunner

START = datetime(2026, 3, 14, 0, 0, tzinfo=UTC)
HEPARIN = {"code": "235473", "name": "heparin 25,000 units in 250 mL D5W"}
SALINE = {"code": "313002", "name": "sodium chloride 0.9 % 1000 mL"}


def _event(kind: str, at: datetime, subject: dict[str, Any], data: dict[str, Any]) -> Any:
    return parse_event(json.dumps({
        "event_id": str(uuid.uuid4()), "type": kind, "schema_version": 1,
        "occurred_at": at.isoformat(), "source": {"system": "bench", "kind": "pump_gateway"},
        "subject": subject, "data": data}))


def patient_day() -> list[Any]:
    q = lambda v, u="mL/h": {"value": v, "unit": u}  # noqa: E731
    order = {"facility_id": "F", "patient_id": "MRN-1", "order_id": "ORD-1"}
    events = [_event("order.placed", START, order, {
        "medication": HEPARIN, "dose": q("18", "[iU]/kg/h"), "dosing_weight": q("80", "kg"),
        "concentration": {"amount": q("25000", "[iU]"), "volume": q("250", "mL")}})]
    for channel, medication, rate, hours in (("A", HEPARIN, "14.4", 10), ("B", SALINE, "75", 14)):
        subject = {"facility_id": "F", "patient_id": "MRN-1", "order_id": "ORD-1",
                   "pump_id": "P1", "channel": channel}
        events.append(_event("program.confirmed", START, subject, {
            "mode": "auto", "medication": medication, "rate": q(rate), "library_mode": "library"}))
        events.append(_event("infusion.started", START, subject, {"rate": q(rate)}))
        for tick in range(1, hours * 360):
            events.append(_event("infusion.status_reported", START + timedelta(seconds=10 * tick),
                                 subject, {"state": "infusing", "rate": q(rate),
                                           "volume_infused": q(f"{tick * 0.04:.2f}", "mL")}))
    for n in range(24):
        at = START + timedelta(hours=n, minutes=7)
        pump = {"facility_id": "F", "pump_id": "P1", "channel": "A", "alarm_id": f"AL{n}"}
        events.append(_event("alarm.raised", at, pump, {"code": "MDC_EVT_FLUID_LINE_OCCL",
                                                        "priority": "high"}))
        events.append(_event("alarm.cleared", at + timedelta(seconds=40), pump, {}))
        events.append(_event("documentation.validated", at, order, {
            "observed_at": at.isoformat(), "rate": q("14.4")}))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}", file=sys.stderr)
    with throwaway_database(args.database_url) as params:
        events = patient_day()
        with EventStore(params) as store:
            for chunk in range(0, len(events), 1000):
                store.append([Incoming(e, Origin("file", "bench"))
                              for e in events[chunk:chunk + 1000]])
        for projection in registry.build():
            with ProjectionRunner(params.conninfo, projection) as runner:
                runner.run_until_caught_up()
        with psycopg.connect(params.conninfo) as conn:
            episode = conn.execute("SELECT episode_id FROM infusion_state WHERE channel = 'A'"
                                   ).fetchone()[0]  # type: ignore[index]

            def timed(request: ReplayRequest) -> tuple[float, float, float, int]:
                figures, cpu, writing, count = [], [], [], 0
                for _ in range(args.runs):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    report = build(conn, request)
                    replayed, cpu_replayed = time.perf_counter(), time.process_time()
                    document(report, "json")
                    figures.append((replayed - started) * 1000)
                    # This process's CPU only (not PostgreSQL's): steadier than wall time
                    # on a machine shared with other work.
                    cpu.append((cpu_replayed - cpu_started) * 1000)
                    writing.append((time.perf_counter() - replayed) * 1000)
                    count = len(report.frames)
                return (statistics.median(figures), statistics.median(cpu),
                        statistics.median(writing), count)

            episode_ms, episode_cpu_ms, episode_json_ms, episode_events = timed(
                ReplayRequest(episode=str(episode)))
            day_ms, day_cpu_ms, day_json_ms, day_events = timed(ReplayRequest(patient="MRN-1"))
    print(f"10-hour episode: {episode_events:,} events in {episode_ms:.0f} ms; patient-day: "
          f"{day_events:,} events in {day_ms:.0f} ms", file=sys.stderr)
    print(f"JSON document: {episode_json_ms:.0f} ms (episode), {day_json_ms:.0f} ms (patient-day)",
          file=sys.stderr)
    emit({"bench": "replay", "events": episode_events, "ms": round(episode_ms, 1),
          "patient_day_events": day_events, "patient_day_ms": round(day_ms, 1),
          "cpu_ms": round(episode_cpu_ms, 1), "patient_day_cpu_ms": round(day_cpu_ms, 1),
          "json_ms": round(episode_json_ms, 1), "patient_day_json_ms": round(day_json_ms, 1),
          "machine": machine()})


if __name__ == "__main__":
    main()
