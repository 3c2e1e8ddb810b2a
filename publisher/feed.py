"""What the publisher loop needs from one outbox, whichever it is.

The loop (:mod:`publisher.loop`) is the same for every feed the edge sends out — the EHR
documentation outbox and the S1 discrepancy pages: read rows after the target's position,
hand them to a sink, record each answer. A :class:`Feed` says how to read and record one
outbox; a :class:`Sink` says how to deliver its rows to one target. Both outboxes keep the
same shape of delivery table (``target``, ``seq``, outcome...), with a row written only once
the target answered, so a target's position is ``max(seq)`` of its delivery rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import psycopg
from psycopg import sql

Outcome = Literal["acknowledged", "rejected"]


class OutboxItem(Protocol):
    """Anything read from an outbox: it has the outbox's commit-ordered ``seq``."""

    @property
    def seq(self) -> int: ...


RowT = TypeVar("RowT", bound=OutboxItem)


@dataclass(frozen=True)
class Delivery(Generic[RowT]):
    """What the target said about one row."""

    row: RowT
    outcome: Outcome
    status_code: int | None = None
    detail: str | None = None
    location: str | None = None


class Sink(Protocol[RowT]):
    """Where rows go. ``deliver`` yields one :class:`Delivery` per row, in order, as each
    is confirmed, and raises ``TargetUnavailable`` at the first row it could not deliver."""

    target: str

    def deliver(self, rows: list[RowT]) -> Iterator[Delivery[RowT]]: ...

    def close(self) -> None: ...


class Feed(Protocol[RowT]):
    """One outbox: how to read it after a position and record a target's answers."""

    #: The command that publishes it (``publish-docs``): names the per-target lock.
    name: str
    #: The channel its writer NOTIFYs at commit, so an idle publisher wakes at once.
    channel: str

    def position(self, conn: psycopg.Connection[Any], target: str) -> int: ...

    def pending(self, conn: psycopg.Connection[Any], after: int, limit: int) -> list[RowT]: ...

    def record(self, conn: psycopg.Connection[Any], target: str, delivery: Delivery[RowT],
               attempts: int) -> None: ...

    def describe(self, row: RowT) -> str: ...


def delivered_position(conn: psycopg.Connection[Any], deliveries: str, target: str) -> int:
    """The highest ``seq`` with a delivery row for ``target`` in table ``deliveries``."""
    row = conn.execute(
        sql.SQL("SELECT COALESCE(max(seq), 0) FROM {} WHERE target = %s").format(
            sql.Identifier(deliveries)),
        (target,),
    ).fetchone()
    return int(row[0]) if row else 0
