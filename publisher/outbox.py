"""Reading the documentation outbox in order, and recording what a target made of each row.

A publisher's position on a target is the highest outbox ``seq`` with a delivery row for
that target: it works strictly in order (one process per target, under an advisory lock),
so every row below its position has been acknowledged or rejected. The delivery row is
written only once the target answered, so a crash before it means "send again".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psycopg
from psycopg.rows import dict_row

Outcome = Literal["acknowledged", "rejected"]


@dataclass(frozen=True)
class OutboxRow:
    """One version of one chart entry, as the projection enqueued it."""

    seq: int
    entry_id: str
    revision: int
    first_revision: bool
    facility_id: str
    resource_type: str
    resource_id: str
    entry: str
    resource: str

    @property
    def feed_item(self) -> bytes:
        """The same JSON object the feed API serves for this row."""
        return (f'{{"position":{self.seq},"entry":{self.entry},'
                f'"resource":{self.resource}}}').encode()


@dataclass(frozen=True)
class Delivery:
    """What the target said about one row."""

    row: OutboxRow
    outcome: Outcome
    status_code: int | None = None
    detail: str | None = None
    location: str | None = None


class Sink(Protocol):
    """Where rows go. ``deliver`` yields one :class:`Delivery` per row, in order, as each
    is confirmed, and raises ``TargetUnavailable`` at the first row it could not deliver."""

    target: str

    def deliver(self, rows: list[OutboxRow]) -> Iterator[Delivery]: ...

    def close(self) -> None: ...


def position(conn: psycopg.Connection[Any], target: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(max(seq), 0) FROM documentation_deliveries WHERE target = %s",
        (target,),
    ).fetchone()
    return int(row[0]) if row else 0


def pending(conn: psycopg.Connection[Any], after: int, limit: int) -> list[OutboxRow]:
    cur = conn.cursor(row_factory=dict_row)
    cur.execute(
        "SELECT seq, entry_id::text AS entry_id, revision, first_revision, facility_id,"
        " resource_type, resource_id, entry, resource FROM documentation_outbox"
        " WHERE seq > %s ORDER BY seq LIMIT %s",
        (after, limit),
    )
    return [OutboxRow(**row) for row in cur.fetchall()]


def record(conn: psycopg.Connection[Any], target: str, delivery: Delivery,
           attempts: int) -> None:
    """The delivery row (idempotent: a row recorded twice keeps the first answer)."""
    row = delivery.row
    conn.execute(
        "INSERT INTO documentation_deliveries (target, seq, entry_id, revision, outcome,"
        " status_code, detail, location, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (target, seq) DO NOTHING",
        (target, row.seq, row.entry_id, row.revision, delivery.outcome, delivery.status_code,
         delivery.detail, delivery.location, attempts),
    )
