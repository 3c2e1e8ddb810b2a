"""The ``discrepancies`` projection: the engine run by ``ledger project``, batch by batch.

The runner folds per stream; the rules need orders, channels, patients and alarms
together, in global order. So ``apply`` only collects the batch's events, and ``write``
— which has the batch's transaction — runs the engine over them in position order and
writes its findings and state in that same transaction, with the position. The engine is
kept in memory between batches and checked against the committed state at each batch (a
batch that rolled back, or a rebuild that switched generations, makes it reload), so the
runner's compare-and-set on the position is all the exclusion it needs. The runner's
per-stream state rows stay empty for this projection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from ledger.store.reader import StoredRecord
from projections.discrepancies import ruleset as rules
from projections.discrepancies import schema, store
from projections.discrepancies.engine import HANDLED, Engine
from projections.runtime.base import Projection, RowSink


class DiscrepanciesProjection(Projection):
    name = "discrepancies"
    tables = ("discrepancy_findings", "discrepancy_state")
    handles = frozenset(HANDLED)
    rebuild_cost = 24.0  # CPU per ledger event in a rebuild, relative to alarms and ders

    def __init__(self, ruleset: rules.RuleSet | None = None,
                 ruleset_path: Path | str | None = None):
        self.ruleset = ruleset or rules.load(ruleset_path)
        self._engine: Engine | None = None
        self._generation: int | None = None

    def create_tables(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        table = schema.names(generation)
        cur.execute(schema.FINDINGS.format(**table).encode())
        cur.execute(schema.STATE.format(**table).encode())

    def create_views(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(schema.VIEWS.format(**schema.names(generation)).encode())

    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        sink.append("events", (record,))

    def write(self, cur: psycopg.Cursor[Any], generation: int, sink: RowSink) -> None:
        events = sink.appends.get("events")
        if not events:
            return
        engine = self._engine_for(cur, generation)
        try:
            for (record,) in events:
                if record.notification_id > engine.position:
                    engine.process(record)
            store.save(cur, generation, engine, self.name)
        except BaseException:
            # The engine is now ahead of what will be committed: rebuild it next batch.
            self._engine = None
            raise
        engine.clear_batch()

    def _engine_for(self, cur: psycopg.Cursor[Any], generation: int) -> Engine:
        engine = self._engine
        if engine is not None and self._generation == generation \
                and store.stored_position(cur, generation) == engine.position:
            return engine
        engine = Engine(self.ruleset)
        store.load(cur, generation, engine)
        self._engine, self._generation = engine, generation
        return engine
