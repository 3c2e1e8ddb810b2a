"""Delivery events derived from successive PCD-01 snapshots (sites without an IPEC feed).

IPEC (PCD-10) is the authoritative event stream; a site that only has PCD-01 snapshots
still wants starts, pauses and rate changes. The tracker keeps each channel's last
snapshot in memory (bounded) and compares:

=========================  ============================  ===============================
previous state             new state                     derived event
=========================  ============================  ===============================
idle / stopped             infusing                      ``infusion.started`` (rate)
paused                     infusing                      ``infusion.resumed``
infusing                   infusing, other rate          ``infusion.rate_changed``
infusing / kvo             paused / alarming             ``infusion.paused``
not kvo                    kvo                           ``infusion.kvo_started`` (rate)
infusing / paused / kvo    idle / stopped                ``infusion.stopped``
=========================  ============================  ===============================

Limits, by design: the first snapshot of a channel after a restart only establishes its
state; a snapshot older than the last one seen derives nothing (late or out of order).
Derived events get ids from their message, so a re-sent snapshot derives the same ids.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

Key = tuple[str, str, str]  # sender, pump, channel
RUNNING = frozenset({"infusing", "kvo"})
ENDED = frozenset({"idle", "stopped"})


@dataclass(frozen=True)
class _Snapshot:
    at: datetime
    state: str
    rate: dict[str, str] | None
    dose_rate: dict[str, str] | None


def _differs(a: dict[str, str] | None, b: dict[str, str] | None) -> bool:
    if a is None or b is None:
        return False
    return a["unit"] != b["unit"] or Decimal(a["value"]) != Decimal(b["value"])


class SnapshotTracker:
    """Last snapshot per (sender, pump, channel); :meth:`observe` returns derived events."""

    def __init__(self, capacity: int = 50_000):
        self.capacity = capacity
        self._last: OrderedDict[Key, _Snapshot] = OrderedDict()

    def observe(self, key: Key, at: datetime, data: dict[str, Any]) -> list[tuple[str, dict]]:
        new = _Snapshot(at, data["state"], data.get("rate"), data.get("dose_rate"))
        old = self._last.get(key)
        if old is not None and at <= old.at:
            return []
        self._last[key] = new
        self._last.move_to_end(key)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        if old is None:
            return []
        return self._transitions(old, new, data)

    @staticmethod
    def _transitions(
        old: _Snapshot, new: _Snapshot, data: dict[str, Any]
    ) -> list[tuple[str, dict]]:
        source = {"infusate_source": data.get("infusate_source")}
        volume = {"volume_infused": data.get("volume_infused")}
        if new.state == "infusing":
            if old.state in ENDED and new.rate is not None:
                return [("infusion.started", {"rate": new.rate, "dose_rate": new.dose_rate,
                                              **source})]
            if old.state in ("paused", "alarming"):
                return [("infusion.resumed", source)]
            if old.state == "infusing" and _differs(old.rate, new.rate):
                return [("infusion.rate_changed", {
                    "new_rate": new.rate, "previous_rate": old.rate,
                    "new_dose_rate": new.dose_rate, "previous_dose_rate": old.dose_rate,
                    **source})]
            return []
        if new.state in ("paused", "alarming") and old.state in RUNNING:
            reason = "alarm" if new.state == "alarming" else "unknown"
            return [("infusion.paused", {"reason": reason, **volume, **source})]
        if new.state == "kvo" and old.state != "kvo" and new.rate is not None:
            return [("infusion.kvo_started", {"rate": new.rate, **source})]
        if new.state in ENDED and old.state not in ENDED:
            return [("infusion.stopped", {**volume, **source})]
        return []
