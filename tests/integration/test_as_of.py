"""As-of reads: "as happened by T" (source clock) versus "as known at T" (ledger clock)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.reader import read_stream
from projections.infusions.projection import InfusionsProjection
from projections.runtime.asof import state_as_of
from projections.runtime.base import RowSink
from projections.runtime.runner import ProjectionRunner
from tests.support.events import wire

pytestmark = pytest.mark.integration

SUBJECT = {"facility_id": "north-campus", "pump_id": "PUMP-7", "channel": "A",
           "patient_id": "MRN-1", "order_id": "ORD-1"}
STREAM = "channel:north-campus:PUMP-7:A"
START = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)


def telemetry(minute: int, volume: int) -> dict[str, Any]:
    return wire("infusion.status_reported", subject=SUBJECT,
                occurred_at=(START + timedelta(minutes=minute)).isoformat(),
                data={"state": "infusing", "volume_infused": {"value": str(volume), "unit": "mL"}})


def append_in_batches(params: ConnectionParams, events: list[dict[str, Any]]) -> list[datetime]:
    """Append each batch separately; return the ledger clock after each batch."""
    marks = []
    with EventStore(params) as store:
        for chunk in range(0, len(events), 100):
            store.append([Incoming(parse_event(json.dumps(e)), Origin("file", "t"))
                          for e in events[chunk:chunk + 100]])
            time.sleep(0.002)  # distinct recorded_at per batch
            marks.append(datetime.now(UTC))
    return marks


def full_fold(params: ConnectionParams, at: datetime, clock: str) -> dict[str, Any]:
    projection, state, sink = InfusionsProjection(), {}, RowSink()
    with psycopg.connect(params.conninfo) as conn:
        for record in read_stream(conn, STREAM, at=at, clock=clock):  # type: ignore[arg-type]
            projection.apply(state, record, sink)
    return state


def test_state_as_of_any_moment_from_snapshots_equals_folding_from_the_first_event(
    database: ConnectionParams,
) -> None:
    events = [wire("program.confirmed", subject=SUBJECT, occurred_at=START.isoformat(),
                   data={"request_id": None})]
    events += [telemetry(minute, minute) for minute in range(1, 600)]
    marks = append_in_batches(database, events)
    with ProjectionRunner(database.conninfo, InfusionsProjection(), snapshot_every=50) as run:
        run.run_until_caught_up()
    for at in (marks[0], marks[2], marks[-1]):
        result = state_as_of(database.conninfo, InfusionsProjection(), STREAM, at, "recorded")
        assert result.from_snapshot_version > 0
        assert result.state == full_fold(database, at, "recorded")
    for minute in (30, 333, 599):
        at = START + timedelta(minutes=minute, seconds=30)
        result = state_as_of(database.conninfo, InfusionsProjection(), STREAM, at, "occurred")
        assert result.state == full_fold(database, at, "occurred")
        episode = result.state["episodes"]["primary"]
        assert episode["volume_infused"]["value"] == str(minute)


def test_late_data_makes_as_happened_and_as_known_differ(database: ConnectionParams) -> None:
    on_time = [wire("program.confirmed", subject=SUBJECT, occurred_at=START.isoformat(),
                    data={"request_id": None})]
    on_time += [telemetry(minute, minute) for minute in range(1, 11)]
    late = [telemetry(minute, 100 + minute) for minute in (11, 12)]  # happened before the next
    after = [telemetry(minute, 200 + minute) for minute in range(20, 23)]
    marks = append_in_batches(database, on_time + after)
    known_before_late = marks[-1]
    append_in_batches(database, late)
    with ProjectionRunner(database.conninfo, InfusionsProjection()) as run:
        run.run_until_caught_up()
    at = START + timedelta(minutes=12, seconds=30)
    happened = state_as_of(database.conninfo, InfusionsProjection(), STREAM, at, "occurred")
    assert happened.state["episodes"]["primary"]["volume_infused"]["value"] == "112"
    known = state_as_of(database.conninfo, InfusionsProjection(), STREAM, known_before_late,
                        "recorded")
    assert known.state["episodes"]["primary"]["volume_infused"]["value"] == "222"
    with psycopg.connect(database.conninfo) as conn:
        assert len(read_stream(conn, STREAM, at=at, clock="occurred")) == 13
        assert len(read_stream(conn, STREAM, at=known_before_late, clock="recorded")) == 14
