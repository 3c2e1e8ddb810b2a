"""The combined incident state after each event, maintained incrementally.

A replay shows the whole state (channels, orders, open alarms, open findings) after every
event, but one event changes one stream's fold state only. Rebuilding everything per frame
made a patient-day quadratic in practice; here each part is recomputed only when a stream
it is built from changed, and a part that did not change is the *same object* in the next
frame. Frames therefore share their unchanged parts, which is safe because a part is never
mutated once built (a change builds a new one) and serialisation only reads them.

The values are exactly what a full rebuild gives, in the same insertion order (the text
renderer picks "the channel of an event" by that order), so the output is byte-identical.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.units import UnitError, flow_from_dose_rate
from projections.replay.findings import FindingTimeline

_ALARM_FIELDS = ("pump_id", "alarm_id", "code", "priority", "raised_at", "acknowledged_at",
                 "channel")


def ordered_flow(order: dict[str, Any]) -> dict[str, str] | None:
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


class OpenFindings:
    """The findings open at an instant, memoised per interval between finding boundaries.

    Which findings are open changes only where some finding was detected or resolved; every
    instant between two such boundaries has the same answer, so it is computed once per
    interval instead of scanning all findings for every frame.
    """

    def __init__(self, timeline: FindingTimeline):
        self.timeline = timeline
        moments = {f["detected_at"] for f in timeline.findings}
        moments |= {f["resolved_at"] for f in timeline.findings if f.get("resolved_at")}
        self.boundaries = sorted(moments)
        self.by_interval: dict[int, list[dict[str, Any]]] = {}

    def at(self, moment: datetime) -> list[dict[str, Any]]:
        if not self.boundaries:
            return []
        interval = bisect_right(self.boundaries, moment)
        found = self.by_interval.get(interval)
        if found is None:
            found = self.by_interval[interval] = self.timeline.open_at(moment)
        return found


class CombinedState:
    """Per-stream parts of the snapshot, rebuilt only for the streams an event changed."""

    def __init__(self, states: dict[str, dict[str, Any]], findings: FindingTimeline):
        self.states = states
        self.open_findings = OpenFindings(findings)
        # stream -> that channel stream's entries, in the order a full rebuild inserts them
        self._channel_parts: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._channel_streams: list[str] = []  # the keys of _channel_parts, kept sorted
        self._pump_parts: dict[str, list[dict[str, Any]]] = {}
        self._order_states: dict[str, dict[str, Any]] = {}
        self._flows: dict[str, dict[str, str] | None] = {}
        self._channels: dict[str, Any] = {}
        self._orders: dict[str, Any] = {}
        self._alarms: list[dict[str, Any]] = []

    def changed(self, stream: str) -> None:
        """The fold state of ``stream`` changed: rebuild the parts made from it."""
        if stream.startswith("channel:"):
            if stream not in self._channel_parts:
                insort(self._channel_streams, stream)
            self._channel_parts[stream] = self._channel_part(self.states[stream])
            self._channels = self._assemble_channels()
        elif stream.startswith("order:"):
            self._rebuild_orders()
            # Every channel shows its order's dose and rate: all are rebuilt (orders change
            # a handful of times per episode, channels report every few seconds).
            for key in self._channel_parts:
                self._channel_parts[key] = self._channel_part(self.states[key])
            self._channels = self._assemble_channels()
        elif stream.startswith("pump:"):
            self._pump_parts[stream] = self._pump_part(self.states[stream])
            self._alarms = sorted(
                (a for key in sorted(self._pump_parts) for a in self._pump_parts[key]),
                key=lambda a: (a["raised_at"], a["alarm_id"]))

    def snapshot(self, at: datetime) -> dict[str, Any]:
        return {"channels": self._channels, "orders": self._orders,
                "open_alarms": self._alarms, "open_findings": self.open_findings.at(at)}

    # -- parts ----------------------------------------------------------------------------
    def _rebuild_orders(self) -> None:
        orders: dict[str, dict[str, Any]] = {}
        for key in sorted(self.states):
            state = self.states[key]
            if key.startswith("order:") and state.get("order_id"):
                orders[state["order_id"]] = state
        self._order_states = orders
        self._flows = {}
        self._orders = {k: {"status": v.get("status"), "dose": v.get("dose"),
                            "rate": v.get("rate")} for k, v in sorted(orders.items())}

    def _flow(self, order_id: str, order: dict[str, Any]) -> dict[str, str] | None:
        if order_id not in self._flows:
            self._flows[order_id] = ordered_flow(order)
        return self._flows[order_id]

    def _channel_part(self, state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        part = []
        for source, episode in sorted(state.get("episodes", {}).items()):
            order_id = episode.get("order_id") or ""
            order = self._order_states.get(order_id, {})
            program = episode.get("program") or {}
            part.append((f"{episode['pump_id']}/{episode['channel']}/{source}", {
                "episode_id": episode["episode_id"],
                "medication": (episode.get("medication") or {}).get("name"),
                "status": episode["status"],
                "patient_id": episode["patient_id"],
                "order_id": episode["order_id"],
                "ordered_dose": order.get("dose"),
                "ordered_rate": self._flow(order_id, order) if order else None,
                "programmed_rate": program.get("rate"),
                "programmed_dose": program.get("dose"),
                "running_rate": episode["current_rate"],
                "running_dose_rate": episode["current_dose_rate"],
                "volume_infused": episode["volume_infused"],
            }))
        return part

    def _assemble_channels(self) -> dict[str, Any]:
        channels: dict[str, Any] = {}
        parts = self._channel_parts
        for stream in self._channel_streams:
            for key, entry in parts[stream]:
                channels[key] = entry
        return channels

    @staticmethod
    def _pump_part(state: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: alarm[k] for k in _ALARM_FIELDS} for alarm in state.get("alarms", {}).values()
                if alarm.get("raised_at") and not alarm.get("cleared_at")]
