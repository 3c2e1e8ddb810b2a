"""Reading stored events back: by stream, by global position, and as of a moment.

Two different questions about the past, because pump data arrives late:

* **as happened by T** (``clock="occurred"``): the events whose source clock says they
  happened at or before T, in the order they happened (``occurred_at``, then arrival);
* **as known at T** (``clock="recorded"``): the events the ledger had committed by T, in
  the order it recorded them — what the hospital could have known at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import psycopg
from psycopg.rows import tuple_row

from ledger.collector import collector_paused
from ledger.store.streams import stream_id

Clock = Literal["occurred", "recorded"]

# Fetched in binary format (same Python types as text): ``state`` and ``hash`` then arrive
# as raw bytes instead of hex text twice their size, and timestamps need no parsing. It
# halves the fetch of a long stream, which an as-of read of thousands of events waits on.
_COLUMNS = (
    "notification_id, stream, originator_version, topic, event_id, occurred_at, received_at,"
    " recorded_at, hash, state"
)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One event as the ledger holds it: position, stream, the three clocks and the envelope."""

    notification_id: int
    stream: str
    version: int
    type: str
    event_id: Any
    occurred_at: datetime
    received_at: datetime | None
    recorded_at: datetime
    hash: bytes
    event: dict[str, Any]
    origin: dict[str, str]

    @property
    def subject(self) -> dict[str, str]:
        return self.event.get("subject", {})

    @property
    def data(self) -> dict[str, Any]:
        return self.event.get("data", {})


def record_from_row(row: tuple[Any, ...]) -> StoredRecord:
    stored = orjson.loads(row[9])
    return StoredRecord(
        notification_id=row[0], stream=row[1], version=row[2], type=row[3], event_id=row[4],
        occurred_at=row[5], received_at=row[6], recorded_at=row[7], hash=bytes(row[8]),
        event=stored["event"], origin=stored["origin"],
    )


def records_from_rows(rows: Sequence[tuple[Any, ...]]) -> list[StoredRecord]:
    """``record_from_row`` over a fetched page, with the collector paused."""
    with collector_paused():
        return [record_from_row(row) for row in rows]


def read_stream(
    conn: psycopg.Connection[Any],
    stream: str,
    *,
    at: datetime | None = None,
    clock: Clock = "recorded",
    after_version: int = 0,
) -> list[StoredRecord]:
    """A stream's events after ``after_version``: all of them, or as of ``at`` by the chosen
    clock — in recorded order for "as known", in source-clock order for "as happened"."""
    cur = conn.cursor(row_factory=tuple_row, binary=True)
    where = "originator_id = %s AND originator_version > %s"
    params: list[Any] = [stream_id(stream), after_version]
    order = "originator_version"
    if at is not None and clock == "recorded":
        where += " AND recorded_at <= %s"
        params.append(at)
    elif at is not None:
        where += " AND occurred_at <= %s"
        params.append(at)
        order = "occurred_at, originator_version"
    cur.execute(f"SELECT {_COLUMNS} FROM ledger_events WHERE {where} ORDER BY {order}".encode(),
                params)
    return records_from_rows(cur.fetchall())


def read_positions(
    conn: psycopg.Connection[Any], after: int = 0, limit: int = 1000
) -> list[StoredRecord]:
    """Events in global order after a position (for projections, replay and exports)."""
    cur = conn.cursor(row_factory=tuple_row, binary=True)
    cur.execute(
        f"SELECT {_COLUMNS} FROM ledger_events WHERE notification_id > %s"
        " ORDER BY notification_id LIMIT %s",
        (after, limit),
    )
    return records_from_rows(cur.fetchall())


def iter_all(conn: psycopg.Connection[Any], batch: int = 5000) -> Iterator[StoredRecord]:
    after = 0
    while True:
        records = read_positions(conn, after, batch)
        if not records:
            return
        yield from records
        after = records[-1].notification_id


def head_position(conn: psycopg.Connection[Any]) -> int:
    """The newest event's position (notification id); 0 for an empty ledger."""
    row = conn.execute("SELECT COALESCE(max(notification_id), 0) FROM ledger_events").fetchone()
    return int(row[0]) if row else 0
