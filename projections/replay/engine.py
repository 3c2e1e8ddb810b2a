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
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from ledger.store.reader import StoredRecord, read_stream
from ledger.units import UnitError, flow_from_dose_rate
from projections.alarms.projection import AlarmsProjection
from projections.infusions.episodes import ChannelFold
from projections.infusions.orders import fold_location, fold_order
from projections.infusions.projection import CHANNEL_TYPES, ORDER_TYPES
from projections.replay.findings import FindingTimeline
from projections.runtime.base import RowSink


@dataclass
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
        return dict(self.__dict__)


_FLOWS: dict[str, dict[str, str] | None] = {}


def _ordered_flow(order: dict[str, Any]) -> dict[str, str] | None:
    """The order's rate in mL/h (memoised: an order changes rarely, frames are many)."""
    key = repr((order.get("rate"), order.get("dose"), order.get("concentration"),
                order.get("dosing_weight")))
    if key not in _FLOWS:
        if len(_FLOWS) > 10_000:
            _FLOWS.clear()
        _FLOWS[key] = _convert_ordered_flow(order)
    return _FLOWS[key]


def _convert_ordered_flow(order: dict[str, Any]) -> dict[str, str] | None:
    """The order's rate in mL/h: as written, or converted from its dose with ledger.units."""
    if order.get("rate"):
        return dict(order["rate"])
    dose, concentration = order.get("dose"), order.get("concentration")
    if not dose or not concentration:
        return None
    weight = order.get("dosing_weight")
    try:
        flow = flow_from_dose_rate(
            Decimal(dose["value"]), dose["unit"],
            Decimal(concentration["amount"]["value"]), concentration["amount"]["unit"],
            Decimal(concentration["volume"]["value"]), concentration["volume"]["unit"],
            Decimal(weight["value"]) if weight and weight["unit"] == "kg" else None,
            places=3,
        )
    except (UnitError, KeyError, ArithmeticError):
        return None  # a one-off dose, or not convertible: shown as ordered, not as a flow
    return {"value": format(flow.normalize(), "f"), "unit": "mL/h"}


class Replay:
    """Folds records in order and snapshots the combined state after each."""

    def __init__(self, findings: FindingTimeline | None = None):
        self.channel_fold = ChannelFold()
        self.alarms = AlarmsProjection()
        self.states: dict[str, dict[str, Any]] = {}
        # Every episode seen, by id, including those a later program replaced.
        self.episodes: dict[str, dict[str, Any]] = {}
        self.findings = findings or FindingTimeline([])

    def frames(self, records: Iterable[StoredRecord]) -> list[Frame]:
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
            fired, resolved = self.findings.at_event(str(record.event_id), record.occurred_at)
            frames.append(Frame(
                position=record.notification_id, stream=record.stream, version=record.version,
                type=record.type, event_id=str(record.event_id),
                occurred_at=record.event["occurred_at"], received_at=record.event.get(
                    "received_at"), recorded_at=record.recorded_at.isoformat(),
                source=record.event["source"], actor=record.event.get("actor"),
                subject=record.subject, data=record.data, hash=record.hash.hex(),
                state=self.snapshot(record.occurred_at), fired=fired, resolved=resolved,
            ))
        return frames

    def snapshot(self, at: datetime) -> dict[str, Any]:
        orders = {}
        for key, state in sorted(self.states.items()):
            if key.startswith("order:") and state.get("order_id"):
                orders[state["order_id"]] = state
        channels = {}
        for key, state in sorted(self.states.items()):
            if not key.startswith("channel:"):
                continue
            for source, episode in sorted(state.get("episodes", {}).items()):
                order = orders.get(episode.get("order_id") or "", {})
                program = episode.get("program") or {}
                channels[f"{episode['pump_id']}/{episode['channel']}/{source}"] = {
                    "episode_id": episode["episode_id"],
                    "medication": (episode.get("medication") or {}).get("name"),
                    "status": episode["status"],
                    "patient_id": episode["patient_id"],
                    "order_id": episode["order_id"],
                    "ordered_dose": order.get("dose"),
                    "ordered_rate": _ordered_flow(order) if order else None,
                    "programmed_rate": program.get("rate"),
                    "programmed_dose": program.get("dose"),
                    "running_rate": episode["current_rate"],
                    "running_dose_rate": episode["current_dose_rate"],
                    "volume_infused": episode["volume_infused"],
                }
        alarms = []
        for key, state in sorted(self.states.items()):
            if key.startswith("pump:"):
                for alarm in state.get("alarms", {}).values():
                    if alarm.get("raised_at") and not alarm.get("cleared_at"):
                        alarms.append({k: alarm[k] for k in (
                            "pump_id", "alarm_id", "code", "priority", "raised_at",
                            "acknowledged_at", "channel")})
        return {
            "channels": channels,
            "orders": {k: {"status": v.get("status"), "dose": v.get("dose"),
                           "rate": v.get("rate")} for k, v in sorted(orders.items())},
            "open_alarms": sorted(alarms, key=lambda a: (a["raised_at"], a["alarm_id"])),
            "open_findings": self.findings.open_at(at),
        }


def load_records(
    conn: psycopg.Connection[Any], streams: Iterable[str], *, until: datetime | None = None,
    clock: str = "occurred",
) -> list[StoredRecord]:
    """Every event of the streams (up to ``until`` by the chosen clock).

    With the ledger clock, in recorded order. With the source clock, streams are merged by
    when their events happened, but each stream keeps its own recorded order, so a late event
    is folded where the projections folded it and the replayed state is theirs exactly.
    """
    per_stream = [
        read_stream(conn, stream, at=until, clock=clock)  # type: ignore[arg-type]
        for stream in sorted(streams)
    ]
    if clock == "recorded":
        return sorted((r for records in per_stream for r in records),
                      key=lambda r: r.notification_id)
    for records in per_stream:
        records.sort(key=lambda r: r.version)  # read_stream sorted by occurred_at: undo
    # heapq.merge compares only the heads of the inputs: a k-way merge that never reorders
    # within one input, even where an input is not sorted by the key (late data).
    return list(heapq.merge(*per_stream, key=lambda r: (r.occurred_at, r.notification_id)))
