"""The ``documentation`` projection: chart-ready entries, their documentation state, outbox.

Channel streams fold into device entries and episode counters (``fold.DeviceFold``);
order streams fold into documentation actions and manual entries (``charting``). The
writer upserts those rows (guarded by event position), links actions to entries
(``links``), recomputes every entry the batch touched and offers its new version to the
outbox (``outbox.refresh``) — all in the runner's batch transaction, so the outbox never
holds a version the tables do not, and vice versa.

The volume interval is part of the projection's definition (it decides entry ids):
changing it means a rebuild, which enqueues the new intervals' entries; the old ones stay
published as they were.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import psycopg

from ledger.store.reader import StoredRecord
from projections.documentation import schema
from projections.documentation.charting import ACTIONS, fold_documentation, fold_order
from projections.documentation.fhir import Naming
from projections.documentation.fold import DeviceFold
from projections.documentation.links import link
from projections.documentation.outbox import as_jsonb, refresh
from projections.infusions.projection import CHANNEL_TYPES, ORDER_TYPES
from projections.runtime.base import Projection, RowSink
from projections.runtime.sql import upsert_rows

DEFAULT_INTERVAL = timedelta(hours=1)
_JSON_COLUMNS = ("medication", "concentration", "facts", "detail", "charted")
_ACTION_COLUMNS = (
    "event_id", "action", "facility_id", "order_id", "patient_id", "encounter_id", "pump_id",
    "channel", "observed_at", "cited", "refers_to", "field", "device_value", "device_unit",
    "charted_value", "charted_unit", "charted", "reason", "has_rate", "has_dose_rate",
    "has_volume", "actor_id", "actor_role", "occurred_at", "recorded_at", "position",
)


class DocumentationProjection(Projection):
    name = "documentation"
    tables = ("documentation_entries", "documentation_actions", "documentation_links",
              "documentation_episodes")
    handles = CHANNEL_TYPES | ORDER_TYPES | frozenset(ACTIONS)
    rebuild_cost = 18.0  # CPU per ledger event in a rebuild, relative to alarms and ders

    def __init__(self, volume_interval: timedelta = DEFAULT_INTERVAL,
                 naming: Naming | None = None) -> None:
        self.device = DeviceFold(volume_interval)
        self.naming = naming or Naming()

    # -- schema ----------------------------------------------------------------------
    def create_tables(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        for statement in schema.ddl(generation):
            cur.execute(statement.encode())

    def create_views(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(schema.views(generation).encode())

    # -- fold ------------------------------------------------------------------------
    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        if record.type in ACTIONS:
            action, manual = fold_documentation(state, record)
            sink.append("actions", tuple(action[c] for c in _ACTION_COLUMNS))
            if manual is not None:
                sink.upsert("entries", manual["entry_id"], manual)
        elif record.type in ORDER_TYPES:
            fold_order(state, record)
        else:
            self.device.apply(state, record, sink)

    # -- write -----------------------------------------------------------------------
    def write(self, cur: psycopg.Cursor[Any], generation: int, sink: RowSink) -> None:
        names = schema.names(generation)
        episodes = list(sink.upserts.get("episodes", {}).values())
        if episodes:
            upsert_rows(cur, names["episodes"], episodes, ("episode_id",))
        entries = [_jsonb(row) for row in sink.upserts.get("entries", {}).values()]
        if entries:
            upsert_rows(cur, names["entries"], entries, ("entry_id",))
        actions = [_jsonb_action(row) for row in sink.appends.get("actions", [])]
        if actions:
            cur.executemany(
                (f"INSERT INTO {names['actions']} ({', '.join(_ACTION_COLUMNS)}) VALUES"
                 f" ({', '.join('%s' for _ in _ACTION_COLUMNS)}) ON CONFLICT DO NOTHING"
                 ).encode(), actions)
        entry_ids = [row["entry_id"] for row in entries]
        touched = set(entry_ids) | link(cur, names, entry_ids, [a[0] for a in actions])
        touched |= _episode_entries(cur, names, {c[0] for c in sink.appends.get(
            "patient_changes", [])})
        refresh(cur, names, generation, touched, self.naming)


def _jsonb(row: dict[str, Any]) -> dict[str, Any]:
    return {k: as_jsonb(v) if k in _JSON_COLUMNS and v is not None else v for k, v in row.items()}


def _jsonb_action(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(as_jsonb(v) if c == "charted" else v for c, v in zip(_ACTION_COLUMNS, row,
                                                                    strict=True))


def _episode_entries(cur: psycopg.Cursor[Any], names: dict[str, str],
                     episodes: Iterable[str]) -> set[Any]:
    """Entries whose patient changed with their episode's (a late association)."""
    wanted = sorted(episodes)
    if not wanted:
        return set()
    cur.execute(f"SELECT entry_id FROM {names['entries']} WHERE episode_id = ANY(%s::uuid[])"
                .encode(), (wanted,))
    return {row[0] for row in cur.fetchall()}
