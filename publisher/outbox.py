"""Reading the documentation outbox in order, and recording what a target made of each row.

A publisher's position on a target is the highest outbox ``seq`` with a delivery row for
that target: it works strictly in order (one process per target, under an advisory lock),
so every row below its position has been acknowledged or rejected. The delivery row is
written only once the target answered, so a crash before it means "send again".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from publisher import feed
from publisher.feed import Outcome

__all__ = ["DOCUMENTATION", "Delivery", "DocumentationFeed", "OutboxRow", "Outcome", "Sink",
           "pending", "position", "record"]


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


# The generic types, bound to this outbox's rows (the names the sinks have always used).
Delivery = feed.Delivery[OutboxRow]
Sink = feed.Sink[OutboxRow]


def position(conn: psycopg.Connection[Any], target: str) -> int:
    return feed.delivered_position(conn, "documentation_deliveries", target)


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


class DocumentationFeed:
    """The documentation outbox as a :class:`publisher.feed.Feed`."""

    name = "publish-docs"
    channel = "documentation_outbox"  # the projection NOTIFYs it at commit

    def position(self, conn: psycopg.Connection[Any], target: str) -> int:
        return position(conn, target)

    def pending(self, conn: psycopg.Connection[Any], after: int, limit: int) -> list[OutboxRow]:
        return pending(conn, after, limit)

    def record(self, conn: psycopg.Connection[Any], target: str, delivery: Delivery,
               attempts: int) -> None:
        record(conn, target, delivery, attempts)

    def describe(self, row: OutboxRow) -> str:
        return f"entry {row.entry_id} revision {row.revision}"


DOCUMENTATION = DocumentationFeed()
