"""A stream's folded state as of a moment, by either clock, from the nearest snapshot.

* ``clock="recorded"`` — *as known at T*: events the ledger had committed by T, in the order
  it recorded them. Any snapshot recorded by T is a valid starting point.
* ``clock="occurred"`` — *as happened by T*: events whose source clock is at or before T, in
  source-clock order. A snapshot is a valid starting point only if every event after it
  happened no earlier than the latest one inside it (no late data straddles it); otherwise
  the fold starts from the first event.

The two differ exactly when data arrived late — which is what a safety officer needs to see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from ledger.store.reader import Clock, StoredRecord, read_stream
from ledger.store.streams import stream_id
from projections.runtime import catalog
from projections.runtime.base import Projection, RowSink


@dataclass
class AsOf:
    stream: str
    at: datetime
    clock: Clock
    state: dict[str, Any]
    folded: list[StoredRecord] = field(default_factory=list)
    from_snapshot_version: int = 0


def _snapshot(
    conn: psycopg.Connection[Any], projection: Projection, generation: int, stream: str,
    at: datetime, clock: Clock,
) -> tuple[int, dict[str, Any]]:
    cur = conn.cursor(row_factory=tuple_row)
    if clock == "recorded":
        cur.execute(
            "SELECT version, state FROM projection_snapshots WHERE projection = %s"
            " AND generation = %s AND stream = %s AND recorded_at <= %s"
            " ORDER BY version DESC LIMIT 1",
            (projection.name, generation, stream, at),
        )
    else:
        cur.execute(
            "SELECT s.version, s.state FROM projection_snapshots s WHERE s.projection = %s"
            " AND s.generation = %s AND s.stream = %s AND s.max_occurred_at <= %s"
            " AND NOT EXISTS (SELECT 1 FROM ledger_events e WHERE e.originator_id = %s"
            "   AND e.originator_version > s.version AND e.occurred_at < s.max_occurred_at)"
            " ORDER BY s.version DESC LIMIT 1",
            (projection.name, generation, stream, at, stream_id(stream)),
        )
    row = cur.fetchone()
    return (int(row[0]), dict(row[1])) if row else (0, {})


def state_as_of(
    conninfo: str, projection: Projection, stream: str, at: datetime, clock: Clock = "recorded"
) -> AsOf:
    with psycopg.connect(conninfo) as conn:
        generation = catalog.active_generation(conn, projection.name)
        version, state = (0, {}) if generation is None else _snapshot(
            conn, projection, generation, stream, at, clock)
        records = read_stream(conn, stream, at=at, clock=clock, after_version=version)
    sink = RowSink()  # rows are not wanted here: only the state
    for record in records:
        if record.type in projection.handles:
            projection.apply(state, record, sink)
    return AsOf(stream, at, clock, state, records, version)
