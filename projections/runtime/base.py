"""What a projection is: a pure fold per stream plus the SQL that writes its view.

A projection folds each stream's events into a JSON-serialisable state (``apply``: no I/O,
no clock, deterministic) and emits rows into a :class:`RowSink`; ``write`` then puts the
rows of a batch into its tables, in the same transaction as its position. Folds are per
stream, so the result does not depend on how streams interleave; cross-stream questions
(which order does this episode belong to? which infusion did this alarm hit?) are answered
by the views, at query time, from each stream's rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg

from ledger.store.reader import StoredRecord


class ProjectionError(Exception):
    """A projection cannot go on: it stops with its position unchanged (fail and stop)."""


class UnknownEventType(ProjectionError):
    """An event type the ledger does not know reached a projection: never skipped."""


class RowSink:
    """Rows a batch produced, per table kind: upserts keyed by primary key, and appends."""

    def __init__(self) -> None:
        self.upserts: dict[str, dict[Any, dict[str, Any]]] = defaultdict(dict)
        self.appends: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    def upsert(self, kind: str, key: Any, row: dict[str, Any]) -> None:
        # The last row for a key in a batch wins: it carries the newest event position.
        self.upserts[kind][key] = row

    def append(self, kind: str, row: tuple[Any, ...]) -> None:
        self.appends[kind].append(row)

    def __len__(self) -> int:
        return sum(map(len, self.upserts.values())) + sum(map(len, self.appends.values()))


class Projection(ABC):
    """One read model: its name, its tables (per generation) and its fold."""

    #: Stable name: the key of its position, generation and status rows.
    name: str
    #: Base names of its physical tables; generation g lives in ``<base>_g<g>``.
    tables: Sequence[str]
    #: Event types it folds; every other *known* type is deliberately not its business.
    handles: frozenset[str]
    #: Relative CPU cost of a rebuild (per ledger event, as measured by bench/rebuild.py),
    #: used only to balance parallel rebuilds across processes.
    rebuild_cost: float = 1.0

    @abstractmethod
    def create_tables(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        """Create one generation's tables (idempotent: IF NOT EXISTS)."""

    @abstractmethod
    def create_views(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        """(Re)point the public views at one generation's tables."""

    @abstractmethod
    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        """Fold ``record`` into its stream's ``state`` (in place) and emit the rows it changes."""

    @abstractmethod
    def write(self, cur: psycopg.Cursor[Any], generation: int, sink: RowSink) -> None:
        """Write a batch's rows; upserts must never let an older event overwrite a newer one."""

    def table(self, base: str, generation: int) -> str:
        return f"{base}_g{generation}"

    def checksum_tables(self, generation: int) -> list[str]:
        """The tables whose content must be identical after a rebuild."""
        return [self.table(base, generation) for base in self.tables]
