"""SQL for projection bookkeeping: generations and their positions, stream states, status."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
from psycopg.rows import tuple_row

from ledger.store.streams import stream_id
from projections.runtime.base import Projection, ProjectionError
from projections.runtime.sql import upsert_rows


class ConcurrentRunner(ProjectionError):
    """Another process moved this projection's position: two runners must not share one."""


def active_generation(conn: psycopg.Connection[Any], name: str) -> int | None:
    row = conn.execute(
        "SELECT generation FROM projection_generations WHERE projection = %s AND state = 'active'",
        (name,),
    ).fetchone()
    return row[0] if row else None


def ensure_active(conn: psycopg.Connection[Any], projection: Projection) -> int:
    """The active generation, creating generation 1 (tables and views) on first use."""
    with conn.transaction():
        lock_key = f"projection:{projection.name}"
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key,))
        generation = active_generation(conn, projection.name)
        if generation is None:
            generation = 1
            cur = conn.cursor()
            projection.create_tables(cur, generation)
            projection.create_views(cur, generation)
            conn.execute(
                "INSERT INTO projection_generations (projection, generation, state, switched_at)"
                " VALUES (%s, 1, 'active', clock_timestamp())",
                (projection.name,),
            )
    return generation


def position(conn: psycopg.Connection[Any], name: str, generation: int) -> int:
    row = conn.execute(
        "SELECT notification_id FROM projection_generations WHERE projection = %s"
        " AND generation = %s",
        (name, generation),
    ).fetchone()
    if row is None:
        raise ProjectionError(f"projection {name} has no generation {generation}")
    return int(row[0])


def advance(
    cur: psycopg.Cursor[Any], name: str, generation: int, expected: int, new: int
) -> None:
    """Move the position from ``expected`` to ``new`` inside the batch's transaction.

    The compare-and-set makes a second runner of the same projection fail instead of
    applying a batch twice: exactly-once by construction, as eventsourcing's tracking does.
    """
    cur.execute(
        "UPDATE projection_generations SET notification_id = %s WHERE projection = %s"
        " AND generation = %s AND notification_id = %s AND state <> 'retired'",
        (new, name, generation, expected),
    )
    if cur.rowcount != 1:
        raise ConcurrentRunner(
            f"projection {name} generation {generation} is no longer at position {expected}"
            " (another runner advanced it, or it was retired by a rebuild)"
        )


def load_states(
    conn: psycopg.Connection[Any], name: str, generation: int, streams: Iterable[str]
) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=tuple_row)
    cur.execute(
        "SELECT stream, state FROM projection_stream_states WHERE projection = %s"
        " AND generation = %s AND stream = ANY(%s)",
        (name, generation, list(streams)),
    )
    return {row[0]: row[1] for row in cur.fetchall()}


def save_states(
    cur: psycopg.Cursor[Any],
    name: str,
    generation: int,
    states: dict[str, tuple[int, dict[str, Any]]],
) -> None:
    if not states:
        return
    upsert_rows(cur, "projection_stream_states", [
        {"projection": name, "generation": generation, "stream": stream,
         "last_position": position, "state": _dumps(state)}
        for stream, (position, state) in states.items()
    ], ("projection", "generation", "stream"))


def save_snapshots(
    cur: psycopg.Cursor[Any], name: str, generation: int, snapshots: list[tuple[Any, ...]]
) -> None:
    """Fold-state snapshots; ``max_occurred_at`` is read from the stream's own events."""
    if not snapshots:
        return
    cur.executemany(
        "INSERT INTO projection_snapshots (projection, generation, stream, version,"
        " notification_id, recorded_at, max_occurred_at, state)"
        " SELECT %s, %s, %s, %s, %s, %s, max(e.occurred_at), %s::jsonb FROM ledger_events e"
        " WHERE e.originator_id = %s AND e.originator_version <= %s"
        " ON CONFLICT DO NOTHING",
        [(name, generation, stream, version, position, recorded_at, state, stream_id(stream),
          version) for stream, version, position, recorded_at, state in snapshots],
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def report_status(
    conn: psycopg.Connection[Any],
    name: str,
    generation: int,
    status: str,
    *,
    position: int,
    error: str | None = None,
    failed_at: int | None = None,
) -> None:
    """Record running / caught-up / failed with lag; outside any batch transaction."""
    conn.execute(
        "INSERT INTO projection_status AS s (projection, generation, status, position, head,"
        " lag_events, lag_seconds, error, failed_at_position, pid, host, updated_at)"
        " SELECT %(name)s, %(generation)s, %(status)s, %(position)s, COALESCE(h.head, 0),"
        # Notification ids may have gaps, so head - position slightly over-counts; it is
        # cheap on any table size, unlike count(*).
        "  GREATEST(COALESCE(h.head, 0) - %(position)s, 0),"
        "  GREATEST(COALESCE(EXTRACT(EPOCH FROM h.head_at - d.done_at), 0), 0),"
        "  %(error)s, %(failed_at)s, %(pid)s, %(host)s, clock_timestamp()"
        " FROM (SELECT 1) AS one"
        " LEFT JOIN LATERAL (SELECT notification_id AS head, recorded_at AS head_at"
        "   FROM ledger_events ORDER BY notification_id DESC LIMIT 1) AS h ON true"
        " LEFT JOIN LATERAL (SELECT recorded_at AS done_at FROM ledger_events"
        "   WHERE notification_id <= %(position)s ORDER BY notification_id DESC LIMIT 1) AS d"
        "   ON true"
        " ON CONFLICT (projection) DO UPDATE SET generation = EXCLUDED.generation,"
        " status = EXCLUDED.status, position = EXCLUDED.position, head = EXCLUDED.head,"
        " lag_events = EXCLUDED.lag_events, lag_seconds = EXCLUDED.lag_seconds,"
        " error = EXCLUDED.error, failed_at_position = EXCLUDED.failed_at_position,"
        " pid = EXCLUDED.pid, host = EXCLUDED.host, updated_at = EXCLUDED.updated_at",
        {
            "name": name, "generation": generation, "status": status, "position": position,
            "error": error, "failed_at": failed_at, "pid": os.getpid(),
            "host": socket.gethostname(),
        },
    )


def statuses(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    cur.execute("SELECT * FROM projection_status ORDER BY projection")
    return list(cur.fetchall())
