"""The ``infusions`` projection: episodes, timelines, orders and patient locations.

Channel streams fold into episodes (``episodes.ChannelFold``); order and patient streams
fold into orders and locations (``orders``). Each touched episode yields one timeline row
per event with the episode's state after it; rows are upserted guarded by event position
(an older event never overwrites a newer state) and timeline rows are appended by COPY.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import psycopg

from ledger.store.reader import StoredRecord
from projections.infusions import schema
from projections.infusions.episodes import ChannelFold, snapshot
from projections.infusions.orders import fold_location, fold_order
from projections.runtime.base import Projection, RowSink
from projections.runtime.sql import upsert_rows

CHANNEL_TYPES = frozenset({
    "pump.associated", "pump.disassociated", "program.auto_requested", "program.auto_accepted",
    "program.auto_rejected", "program.confirmed", "program.cleared", "infusion.started",
    "infusion.rate_changed", "infusion.paused", "infusion.resumed", "infusion.kvo_started",
    "infusion.bolus_delivered", "infusion.vtbi_completed", "infusion.stopped",
    "infusion.status_reported", "ders.limit_alert_raised", "ders.limit_alert_resolved",
})
ORDER_TYPES = frozenset({
    "order.placed", "order.verified", "order.modified", "order.held", "order.released",
    "order.discontinued", "order.completed",
})


def _value(quantity: Mapping[str, Any] | None) -> str | None:
    return quantity["value"] if quantity else None


def _unit(quantity: Mapping[str, Any] | None) -> str | None:
    return quantity["unit"] if quantity else None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class InfusionsProjection(Projection):
    name = "infusions"
    tables = ("infusion_episodes", "infusion_timeline", "infusion_orders", "patient_locations")
    handles = CHANNEL_TYPES | ORDER_TYPES | {"patient.located"}
    rebuild_cost = 4.0  # CPU per ledger event in a rebuild, relative to alarms and ders

    def __init__(self) -> None:
        self.channels = ChannelFold()

    # -- schema ----------------------------------------------------------------------
    def create_tables(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        names = schema.names(generation)
        for ddl in (schema.EPISODES, schema.TIMELINE, schema.ORDERS, schema.LOCATIONS):
            cur.execute(ddl.format(**names).encode())

    def create_views(self, cur: psycopg.Cursor[Any], generation: int) -> None:
        cur.execute(schema.VIEWS.format(**schema.names(generation)).encode())

    # -- fold ------------------------------------------------------------------------
    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        kind = record.type
        if kind in CHANNEL_TYPES:
            for episode in self.channels.apply(state, record):
                self._episode_rows(episode, record, sink)
        elif kind in ORDER_TYPES:
            fold_order(state, record)
            state["last_position"] = record.notification_id
            sink.upsert("orders", (state["facility_id"], state["order_id"]), state)
        elif fold_location(state, record):
            state["last_position"] = record.notification_id
            sink.upsert("locations", (state["facility_id"], state["patient_id"]), state)

    def _episode_rows(self, episode: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        for ref in episode.pop("pending", []):
            # Events from before the episode began (requests, DERS alerts) open its timeline.
            episode["seq"] += 1
            sink.append("timeline", (
                episode["episode_id"], episode["seq"], ref["position"], ref["event_id"],
                ref["type"], ref["occurred_at"], ref["received_at"], ref["recorded_at"],
                _json(ref["data"]), _json({}),
            ))
        episode["seq"] += 1
        sink.append("timeline", (
            episode["episode_id"], episode["seq"], record.notification_id, str(record.event_id),
            record.type, record.event["occurred_at"], record.event.get("received_at"),
            record.recorded_at, _json(record.data), _json(snapshot(episode)),
        ))
        # The live state: its row is built once per batch, at write time, from the last state.
        sink.upsert("episodes", episode["episode_id"], episode)

    # -- write -----------------------------------------------------------------------
    def write(self, cur: psycopg.Cursor[Any], generation: int, sink: RowSink) -> None:
        names = schema.names(generation)
        episodes = [_episode_row(e) for e in sink.upserts.get("episodes", {}).values()]
        if episodes:
            upsert_rows(cur, names["episodes"], episodes, ("episode_id",))
        orders = [_order_row(o) for o in sink.upserts.get("orders", {}).values()]
        if orders:
            upsert_rows(cur, names["orders"], orders, ("facility_id", "order_id"))
        locations = [_location_row(loc) for loc in sink.upserts.get("locations", {}).values()]
        if locations:
            upsert_rows(cur, names["locations"], locations, ("facility_id", "patient_id"))
        timeline = sink.appends.get("timeline")
        if timeline:
            with cur.copy(
                f"COPY {names['timeline']} (episode_id, seq, notification_id, event_id, type,"
                " occurred_at, received_at, recorded_at, data, state_after) FROM STDIN"
            ) as copy:
                for row in timeline:
                    copy.write_row(row)


def _episode_row(e: dict[str, Any]) -> dict[str, Any]:
    medication = e.get("medication") or {}
    concentration = e.get("concentration") or {}
    program = e.get("program") or {}
    return {
        "episode_id": e["episode_id"], "facility_id": e["facility_id"], "pump_id": e["pump_id"],
        "channel": e["channel"], "source": e["source"], "patient_id": e["patient_id"],
        "patient_from": e["patient_from"], "order_id": e["order_id"],
        "order_link": e["order_link"], "request_id": e["request_id"],
        "medication_code": medication.get("code"), "medication_system": medication.get("system"),
        "medication_name": medication.get("name"),
        "conc_amount": _value(concentration.get("amount")),
        "conc_amount_unit": _unit(concentration.get("amount")),
        "conc_volume": _value(concentration.get("volume")),
        "conc_volume_unit": _unit(concentration.get("volume")),
        "program_mode": program.get("mode"), "library_mode": program.get("library_mode"),
        "library_version": program.get("library_version"),
        "library_entry_id": program.get("library_entry_id"),
        "program_care_area": program.get("care_area"),
        "programmed_rate": _value(program.get("rate")),
        "programmed_rate_unit": _unit(program.get("rate")),
        "programmed_dose": _value(program.get("dose")),
        "programmed_dose_unit": _unit(program.get("dose")),
        "programmed_vtbi": _value(program.get("vtbi")),
        "dosing_weight": _value(program.get("dosing_weight")),
        "dosing_weight_unit": _unit(program.get("dosing_weight")),
        "current_rate": _value(e["current_rate"]), "current_rate_unit": _unit(e["current_rate"]),
        "current_dose_rate": _value(e["current_dose_rate"]),
        "current_dose_rate_unit": _unit(e["current_dose_rate"]),
        "status": e["status"], "paused_reason": e["paused_reason"],
        "volume_infused": _value(e["volume_infused"]),
        "volume_infused_unit": _unit(e["volume_infused"]),
        "vtbi_remaining": _value(e["vtbi_remaining"]),
        "programmed_at": e["programmed_at"], "started_at": e["started_at"],
        "ended_at": e["ended_at"], "end_reason": e["end_reason"], "boluses": e["boluses"],
        "soft_alerts": e["soft_alerts"], "hard_alerts": e["hard_alerts"],
        "overrides": e["overrides"], "first_event_id": e["first_event_id"],
        "first_position": e["first_position"], "last_position": e["last_position"],
        "last_occurred_at": e["last_occurred_at"], "last_recorded_at": e["last_recorded_at"],
    }


def _order_row(o: dict[str, Any]) -> dict[str, Any]:
    medication = o.get("medication") or {}
    concentration = o.get("concentration") or {}
    return {
        "facility_id": o["facility_id"], "order_id": o["order_id"],
        "patient_id": o.get("patient_id"), "encounter_id": o.get("encounter_id"),
        "status": o["status"], "verified": o.get("verified", False),
        "medication_code": medication.get("code"), "medication_system": medication.get("system"),
        "medication_name": medication.get("name"),
        "conc_amount": _value(concentration.get("amount")),
        "conc_amount_unit": _unit(concentration.get("amount")),
        "conc_volume": _value(concentration.get("volume")),
        "conc_volume_unit": _unit(concentration.get("volume")),
        "dose": _value(o.get("dose")), "dose_unit": _unit(o.get("dose")),
        "rate": _value(o.get("rate")), "rate_unit": _unit(o.get("rate")),
        "titration": _json(o["titration"]) if o.get("titration") else None,
        "vtbi": _value(o.get("vtbi")), "dosing_weight": _value(o.get("dosing_weight")),
        "dosing_weight_unit": _unit(o.get("dosing_weight")), "route": o.get("route"),
        "high_alert": o.get("high_alert"), "continuous": o.get("continuous"),
        "bolus": _json(o["bolus"]) if o.get("bolus") else None,
        "placed_at": o.get("placed_at"), "start_at": o.get("start_at"),
        "stop_at": o.get("stop_at"), "ended_at": o.get("ended_at"),
        "end_reason": o.get("end_reason"), "modifications": o.get("modifications", 0),
        "last_position": o["last_position"],
    }


def _location_row(loc: dict[str, Any]) -> dict[str, Any]:
    return {
        "facility_id": loc["facility_id"], "patient_id": loc["patient_id"], "unit": loc["unit"],
        "bed": loc.get("bed"), "care_area": loc.get("care_area"), "since": loc["since"],
        "last_position": loc["last_position"],
    }
