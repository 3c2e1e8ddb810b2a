"""Replaying selected streams through the projections' own folds, in memory.

Events of the selected streams are merged in the order they happened (source clock, then
ledger position), each folded by the same code the projections run, and after each one the
combined state is captured: per channel, what was ordered, programmed and running; the
orders' status; the alarms still open; the findings open at that moment (from the stored
findings, when the discrepancy engine has run). Nothing is written.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import psycopg

from ledger.collector import collector_paused
from ledger.store.reader import StoredRecord
from projections.alarms.projection import AlarmsProjection
from projections.infusions.episodes import ChannelFold
from projections.infusions.orders import fold_location, fold_order
from projections.infusions.projection import CHANNEL_TYPES, ORDER_TYPES
from projections.replay.findings import FindingTimeline
from projections.replay.loading import read_streams
from projections.replay.state import CombinedState
from projections.runtime.base import RowSink


@dataclass(slots=True)
class Frame:
    """One event and the state of the incident right after it."""

    position: int
    stream: str
    version: int
    type: str
    event_id: str
    occurred_at: str
    received_at: str | None
    recorded_at: str
    source: dict[str, Any]
    actor: dict[str, Any] | None
    subject: dict[str, Any]
    data: dict[str, Any]
    hash: str
    state: dict[str, Any]
    fired: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FRAME_FIELDS}


_FRAME_FIELDS = tuple(f.name for f in fields(Frame))


class Replay:
    """Folds records in order and snapshots the combined state after each."""

    def __init__(self, findings: FindingTimeline | None = None):
        self.channel_fold = ChannelFold()
        self.alarms = AlarmsProjection()
        self.states: dict[str, dict[str, Any]] = {}
        # Every episode seen, by id, including those a later program replaced.
        self.episodes: dict[str, dict[str, Any]] = {}
        self.findings = findings or FindingTimeline([])
        self.combined = CombinedState(self.states, self.findings)

    def frames(self, records: Iterable[StoredRecord]) -> list[Frame]:
        with collector_paused():
            return self._frames(records)

    def _frames(self, records: Iterable[StoredRecord]) -> list[Frame]:
        frames = []
        sink = RowSink()  # rows are not wanted: replay never writes
        for record in records:
            state = self.states.setdefault(record.stream, {})
            kind = record.type
            # The projections' folds themselves (not their row writers: nothing is written).
            if kind in CHANNEL_TYPES:
                self.channel_fold.apply(state, record)
                for episode in state.get("episodes", {}).values():
                    self.episodes[episode["episode_id"]] = episode
            elif kind in ORDER_TYPES:
                fold_order(state, record)
            elif kind == "patient.located":
                fold_location(state, record)
            elif kind in self.alarms.handles:
                self.alarms.apply(state, record, sink)
            # Only the record's own stream state can have changed: only its parts rebuild.
            self.combined.changed(record.stream)
            event = record.event
            event_id = str(record.event_id)
            fired, resolved = self.findings.at_event(event_id, record.occurred_at)
            frames.append(Frame(
                position=record.notification_id, stream=record.stream, version=record.version,
                type=kind, event_id=event_id, occurred_at=event["occurred_at"],
                received_at=event.get("received_at"), recorded_at=record.recorded_at.isoformat(),
                source=event["source"], actor=event.get("actor"),
                subject=event.get("subject", {}), data=event.get("data", {}),
                hash=record.hash.hex(), state=self.combined.snapshot(record.occurred_at),
                fired=fired, resolved=resolved,
            ))
        return frames

    def snapshot(self, at: datetime) -> dict[str, Any]:
        """The combined state now, with the findings open at ``at``."""
        return self.combined.snapshot(at)


def load_records(
    conn: psycopg.Connection[Any], streams: Iterable[str], *, until: datetime | None = None,
    clock: str = "occurred",
) -> list[StoredRecord]:
    """Every event of the streams (up to ``until`` by the chosen clock).

    With the ledger clock, in recorded order. With the source clock, streams are merged by
    when their events happened, but each stream keeps its own recorded order, so a late event
    is folded where the projections folded it and the replayed state is theirs exactly.
    """
    per_stream = read_streams(conn, streams, until=until, clock=clock)  # type: ignore[arg-type]
    if clock == "recorded":
        return sorted((r for records in per_stream for r in records),
                      key=lambda r: r.notification_id)
    # heapq.merge compares only the heads of the inputs: a k-way merge that never reorders
    # within one input, even where an input is not sorted by the key (late data).
    return list(heapq.merge(*per_stream, key=lambda r: (r.occurred_at, r.notification_id)))
