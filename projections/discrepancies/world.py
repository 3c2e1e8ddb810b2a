"""The engine's cross-stream model: orders, channels, pumps, patients, with dirty tracking.

The other projections fold each stream on its own; rules need an order, the channel
running it, the patient's location and the pump's alarms together. So the engine keeps a
compact model of all of them, keyed like the ledger's streams (``order:<facility>:<id>``,
``channel:<facility>:<pump>:<channel>``...), as JSON-ready dicts. Every change marks the
entity dirty; the writer persists dirty entities in the batch's transaction, and a
restarted engine reloads them (the runner's position CAS makes this engine the only
writer). Indexes (order -> episodes running it, patient -> channels and orders) are
derived data, rebuilt on load.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

DEFAULT_FACILITY = "default"


def _part(value: str | None) -> str:
    # The ledger's stream-key escaping (ledger/store/streams.py), so a channel entity's key
    # is the stream of its own events.
    return (value or "").replace("%", "%25").replace(":", "%3A")


def facility(subject: dict[str, Any]) -> str:
    return subject.get("facility_id") or DEFAULT_FACILITY


@lru_cache(maxsize=65536)
def order_key(fac: str, order_id: str) -> str:
    return f"order:{_part(fac)}:{_part(order_id)}"


@lru_cache(maxsize=65536)
def patient_key(fac: str, patient_id: str) -> str:
    return f"patient:{_part(fac)}:{_part(patient_id)}"


@lru_cache(maxsize=65536)
def pump_key(fac: str, pump_id: str) -> str:
    return f"pump:{_part(fac)}:{_part(pump_id)}"


@lru_cache(maxsize=65536)
def channel_key(fac: str, pump_id: str, channel: str) -> str:
    return f"channel:{_part(fac)}:{_part(pump_id)}:{_part(channel)}"


class Table(dict[str, dict[str, Any]]):
    """Entities of one kind; remembers which ones a batch changed or deleted."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()

    def mark(self, key: str) -> None:
        self.dirty.add(key)
        self.deleted.discard(key)

    def drop(self, key: str) -> None:
        if self.pop(key, None) is not None:
            self.deleted.add(key)
        self.dirty.discard(key)

    def clear_batch(self) -> None:
        self.dirty.clear()
        self.deleted.clear()


class World:
    """All entities plus the indexes the rules use to cross streams."""

    def __init__(self) -> None:
        self.channels = Table("channel")
        self.orders = Table("order")
        self.pumps = Table("pump")
        self.patients = Table("patient")
        self.reviews = Table("review")
        self.meta = Table("meta")
        # order key -> {(channel key, episode id)}; patient key -> channel keys / order keys
        self.order_sources: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
        self.patient_channels: defaultdict[str, set[str]] = defaultdict(set)
        self.patient_orders: defaultdict[str, set[str]] = defaultdict(set)

    def tables(self) -> tuple[Table, ...]:
        return (self.channels, self.orders, self.pumps, self.patients, self.reviews, self.meta)

    def clear_batch(self) -> None:
        for table in self.tables():
            table.clear_batch()

    # -- entities ---------------------------------------------------------------------
    def order(self, key: str) -> dict[str, Any] | None:
        return self.orders.get(key)

    def order_entity(self, key: str, fac: str, order_id: str) -> dict[str, Any]:
        order = self.orders.get(key)
        if order is None:
            order = self.orders[key] = {
                "key": key, "facility_id": fac, "order_id": order_id, "status": "unknown",
                "patient_id": None, "docs": [], "edits": [],
            }
        self.orders.mark(key)
        return order

    def channel_entity(self, key: str, fac: str, pump_id: str, channel: str) -> dict[str, Any]:
        entity = self.channels.get(key)
        if entity is None:
            entity = self.channels[key] = {
                "key": key, "facility_id": fac, "pump_id": pump_id, "channel": channel,
                "fold": {}, "x": {}, "alerts": [], "overrides": 0, "patients": [],
            }
        return entity

    def pump_entity(self, key: str, fac: str, pump_id: str) -> dict[str, Any]:
        entity = self.pumps.get(key)
        if entity is None:
            entity = self.pumps[key] = {
                "key": key, "facility_id": fac, "pump_id": pump_id, "alarms": {},
                "skew": None, "gaps": [], "deferred": [],
            }
            self.pumps.mark(key)
        return entity

    def patient_entity(self, key: str, fac: str, patient_id: str) -> dict[str, Any]:
        entity = self.patients.get(key)
        if entity is None:
            entity = self.patients[key] = {
                "key": key, "facility_id": fac, "patient_id": patient_id, "unit": None,
                "care_area": None, "hard_alerts": [],
            }
            self.patients.mark(key)
        return entity

    # -- indexes ----------------------------------------------------------------------
    def link_source(self, order: str | None, channel: str, episode_id: str,
                    previous: str | None) -> None:
        if previous and previous != order:
            self.order_sources[previous].discard((channel, episode_id))
        if order:
            self.order_sources[order].add((channel, episode_id))

    def unlink_episode(self, order: str | None, channel: str, episode_id: str) -> None:
        if order:
            self.order_sources[order].discard((channel, episode_id))

    def set_channel_patients(self, entity: dict[str, Any], patients: list[str]) -> None:
        """Index the patient keys a channel currently serves (association, episodes)."""
        old = entity["patients"]
        if old == patients:
            return
        for key in old:
            if key not in patients:
                self.patient_channels[key].discard(entity["key"])
        for key in patients:
            self.patient_channels[key].add(entity["key"])
        entity["patients"] = patients

    def index_order(self, order: dict[str, Any], previous_patient: str | None) -> None:
        patient = order.get("patient_key")
        if previous_patient and previous_patient != patient:
            self.patient_orders[previous_patient].discard(order["key"])
        if patient:
            self.patient_orders[patient].add(order["key"])

    def rebuild_indexes(self) -> None:
        """Derive every index from the entities (after loading them)."""
        self.order_sources.clear()
        self.patient_channels.clear()
        self.patient_orders.clear()
        for order in self.orders.values():
            self.index_order(order, None)
        for entity in self.channels.values():
            for episode_id, extra in entity["x"].items():
                self.link_source(extra.get("order"), entity["key"], episode_id, None)
            for key in entity["patients"]:
                self.patient_channels[key].add(entity["key"])
