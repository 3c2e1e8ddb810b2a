"""Device documentation entries from one pump channel's events: a pure fold.

The channel's episodes come from the infusions projection's own :class:`ChannelFold` (the
same code, so episode ids match ``infusion_state``). Around it, this fold keeps per episode
a volume meter and counters, and emits rows:

* one child entry per documentable delivery event (start, rate change, pause, resume,
  KVO, bolus, completion, stop), and a ``not_started`` entry for an infusion programmed
  but ended before it ever ran (FHIR ``not-done``);
* one ``volume`` entry per closed interval (``volumes.VolumeMeter``);
* the parent ``infusion`` entry, revised at each lifecycle change (not on telemetry);
* the episode row with the counters reconciliation reads.

Telemetry (``infusion.status_reported``) corrects the running flow and records the pump's
cumulative volume, but produces no entry of its own: it is a snapshot, not a fact to chart.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any

from ledger.store.reader import StoredRecord
from projections.documentation.model import (
    EPISODE_STATUS,
    KIND_STATUS,
    dec,
    entry_id,
    parent_id,
    parse_time,
    quantity,
    quantity_or_none,
    rounded,
    text,
    utc_text,
)
from projections.documentation.volumes import Interval, VolumeMeter
from projections.infusions.episodes import ENDED, ChannelFold
from projections.runtime.base import RowSink

DELIVERY_KINDS = {
    "infusion.started": "start", "infusion.rate_changed": "rate_change",
    "infusion.paused": "pause", "infusion.resumed": "resume", "infusion.kvo_started": "kvo",
    "infusion.bolus_delivered": "bolus", "infusion.vtbi_completed": "completion",
    "infusion.stopped": "stop",
}
_DELIVERING = frozenset({"infusing", "kvo"})
_MAX_PARENT_SOURCES = 100
# Source ids as UUIDs, cached: the parent entry is re-rendered at every lifecycle event with
# up to _MAX_PARENT_SOURCES sources, each converted twice (sources and cite ids); UUIDs are
# immutable, so sharing one object per id is safe.
_uuid = lru_cache(maxsize=1 << 16)(uuid.UUID)


class DeviceFold:
    """Folds one channel stream into documentation rows (see the module docstring)."""

    def __init__(self, interval: timedelta):
        self.channels = ChannelFold()
        self.meter = VolumeMeter(interval)

    def apply(self, state: dict[str, Any], record: StoredRecord, sink: RowSink) -> None:
        at = parse_time(record.event["occurred_at"])
        docs: dict[str, Any] = state.setdefault("documentation", {})
        episodes = {e["episode_id"]: e for e in state.get("episodes", {}).values()}
        # Device time passes for every metered episode of the channel, whatever the event.
        for episode_id, doc in docs.items():
            if doc.get("meter") and episode_id in episodes:
                closed = self.meter.advance(doc["meter"], at)
                for interval in closed:
                    self._volume(episodes[episode_id], doc, interval, record, sink)
                if closed:
                    sink.upsert("episodes", episode_id,
                                _episode_row(episodes[episode_id], doc, record))
        kind = DELIVERY_KINDS.get(record.type)
        # The episode as it was, for a delivery event's child entry only: telemetry (most
        # events) never reads it, so it is not copied for them.
        before = state.get("episodes", {}).get(ChannelFold._source(record)) if kind else None
        prior = dict(before) if before else None
        touched = self.channels.apply(state, record)
        main = touched[-1] if kind and touched else None
        for episode in touched:
            episode.pop("pending", None)  # the infusions projection's timeline concern
            doc = docs.setdefault(episode["episode_id"], _new_doc(episode, record))
            revise = kind is not None
            if episode["patient_id"] != doc["patient"]:
                doc["patient"] = episode["patient_id"]
                doc["patient_position"] = record.notification_id
                sink.append("patient_changes", (episode["episode_id"],))
                revise = True
            if episode is main and kind:
                doc["received"] += 1
                self._child(_child_kind(kind, doc, prior, episode), episode, doc, prior,
                            record, sink)
            elif record.type == "infusion.status_reported":
                doc["telemetry"] += 1
            self._meter(episode, doc, record, at, sink)
            if episode["status"] in ENDED:
                self._end(episode, doc, record, at, sink, main_child=episode is main)
                del docs[episode["episode_id"]]
            elif revise or (doc["parent"] is None and doc.get("meter")):
                # Lifecycle events revise the parent; telemetry only opens it (a revision a
                # minute would flood the EHR with copies of the same infusion).
                self._parent(episode, doc, record, sink)
            sink.upsert("episodes", episode["episode_id"], _episode_row(episode, doc, record))

    # -- entries -------------------------------------------------------------------------
    def _child(self, kind: str, episode: dict[str, Any], doc: dict[str, Any],
               prior: dict[str, Any] | None, record: StoredRecord, sink: RowSink) -> None:
        data = record.data
        facts: dict[str, Any]
        detail: dict[str, Any] = {}
        if kind == "start":
            facts = {"rate": data.get("rate"), "dose_rate": data.get("dose_rate"),
                     "vtbi": data.get("vtbi")}
            doc["start_event"] = str(record.event_id)
        elif kind in ("rate_change", "resume", "kvo"):
            was = prior if prior and prior["episode_id"] == episode["episode_id"] else {}
            facts = {"rate": episode["current_rate"], "dose_rate": episode["current_dose_rate"],
                     "previous_rate": data.get("previous_rate") or was.get("current_rate"),
                     "previous_dose_rate": data.get("previous_dose_rate")
                     or was.get("current_dose_rate")}
            detail = {"initiated_by": data.get("initiated_by")}
        elif kind == "bolus":
            facts = {"dose": data.get("dose"), "volume": data.get("volume"),
                     "rate": data.get("rate")}
        else:  # pause, completion, stop
            facts = {"volume_infused": data.get("volume_infused")}
            detail = {"next": data.get("next")}
        reason = None
        if kind == "pause":
            reason = data.get("reason") or "unknown"
        elif kind == "stop":  # a clear or a new program ends it too: say which
            reason = data.get("reason") or episode["end_reason"]
        row = _entry_row(kind, entry_id(episode["episode_id"], kind, str(record.event_id)),
                         episode, record, facts, reason=reason, detail=detail,
                         sources=[str(record.event_id)])
        sink.upsert("entries", row["entry_id"], row)
        doc["entries"] += 1
        _note_parent_source(doc, str(record.event_id))

    def _volume(self, episode: dict[str, Any], doc: dict[str, Any], interval: Interval,
                record: StoredRecord, sink: RowSink) -> None:
        eid = entry_id(episode["episode_id"], "volume", interval.end)
        row = _entry_row("volume", eid, episode, record,
                         {"volume": quantity(interval.volume, "mL")},
                         detail={"method": "calculated", "gap": interval.gap},
                         sources=list(interval.events), device_time=interval.end,
                         period=(interval.start, interval.end))
        sink.upsert("entries", eid, row)
        doc["entries"] += 1

    def _parent(self, episode: dict[str, Any], doc: dict[str, Any], record: StoredRecord,
                sink: RowSink) -> None:
        eid = parent_id(episode["episode_id"])
        if doc["parent"] is None:
            doc["parent"] = record.notification_id
            doc["parent_time"] = utc_text(record.occurred_at)
            doc["entries"] += 1
        facts = {"rate": episode["current_rate"], "dose_rate": episode["current_dose_rate"],
                 "volume_infused": episode["volume_infused"],
                 "vtbi": (episode.get("program") or {}).get("vtbi")}
        row = _entry_row("infusion", eid, episode, record, facts,
                         reason=episode["end_reason"], sources=doc["parent_sources"],
                         device_time=episode["started_at"] or doc["parent_time"],
                         period=(episode["started_at"], episode["ended_at"]))
        row["administration_status"] = EPISODE_STATUS.get(episode["status"], "in-progress")
        row["parent_entry_id"] = None
        row["first_position"] = doc["parent"]
        # The start event documents the infusion as a whole: citing it validates both.
        row["cite_ids"] = [_uuid(eid)] + (
            [_uuid(doc["start_event"])] if doc.get("start_event") else [])
        sink.upsert("entries", eid, row)

    def _meter(self, episode: dict[str, Any], doc: dict[str, Any], record: StoredRecord,
               at: Any, sink: RowSink) -> None:
        delivering = episode["status"] in _DELIVERING
        meter = doc.get("meter")
        if meter is None and not delivering:
            return
        if meter is None:
            meter = doc["meter"] = self.meter.start(at)
        event_id = str(record.event_id)
        self.meter.set_flow(meter, episode["current_rate"] if delivering else None, event_id)
        if record.type == "infusion.bolus_delivered":
            self.meter.add_volume(meter, record.data.get("volume"), event_id)
        self.meter.device_reading(meter, record.data.get("volume_infused"), at)

    def _end(self, episode: dict[str, Any], doc: dict[str, Any], record: StoredRecord,
             at: Any, sink: RowSink, *, main_child: bool) -> None:
        meter = doc.get("meter")
        if meter is not None:
            for interval in self.meter.finish(meter, at):
                self._volume(episode, doc, interval, record, sink)
        elif not main_child:
            # Programmed, never delivered, then cleared or replaced: charted as not done.
            row = _entry_row("not_started",
                             entry_id(episode["episode_id"], "not_started", str(record.event_id)),
                             episode, record, {}, reason=episode["end_reason"],
                             sources=[str(record.event_id)])
            row["parent_entry_id"] = None  # nothing ran: no infusion to be part of
            sink.upsert("entries", row["entry_id"], row)
            doc["entries"] += 1
            return
        if not main_child:  # ended by a clear or a new program: the stop is still charted
            self._child("stop", episode, doc, None, record, sink)
        self._parent(episode, doc, record, sink)


def _new_doc(episode: dict[str, Any], record: StoredRecord) -> dict[str, Any]:
    return {"patient": episode["patient_id"], "patient_position": record.notification_id,
            "received": 0, "telemetry": 0, "entries": 0, "parent": None,
            "parent_sources": [], "start_event": None, "meter": None}


def _child_kind(kind: str, doc: dict[str, Any], prior: dict[str, Any] | None,
                episode: dict[str, Any]) -> str:
    """A second ``infusion.started`` in one episode is a resume or a new rate, not a start."""
    if kind != "start" or doc.get("start_event") is None:
        return kind
    same = prior is not None and prior["episode_id"] == episode["episode_id"]
    return "resume" if same and prior is not None and prior["status"] == "paused" \
        else "rate_change"


def _note_parent_source(doc: dict[str, Any], event_id: str) -> None:
    sources = doc["parent_sources"]
    sources.append(event_id)
    if len(sources) > _MAX_PARENT_SOURCES:
        del sources[1]  # keep the first (the start) and the latest


def _entry_row(kind: str, eid: str, episode: dict[str, Any], record: StoredRecord,
               facts: dict[str, Any], *, reason: str | None = None,
               detail: dict[str, Any] | None = None, sources: list[str],
               device_time: str | None = None,
               period: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
    facts = {k: quantity_or_none(facts, k) for k in facts if facts.get(k)}
    volume = facts.get("volume") or facts.get("volume_infused")
    return {
        "entry_id": eid, "episode_id": episode["episode_id"],
        "parent_entry_id": parent_id(episode["episode_id"]), "kind": kind, "origin": "device",
        "facility_id": episode["facility_id"], "pump_id": episode["pump_id"],
        "channel": episode["channel"], "infusate_source": episode["source"],
        "order_id": episode["order_id"], "patient_id": episode["patient_id"],
        "medication": episode.get("medication"), "concentration": episode.get("concentration"),
        "device_time": utc_text(device_time or record.occurred_at),
        "period_start": utc_text(period[0]) if period else None,
        "period_end": utc_text(period[1]) if period else None,
        "received_at": utc_text(record.received_at), "ledger_time": utc_text(record.recorded_at),
        "administration_status": KIND_STATUS.get(kind, "in-progress"), "reason": reason,
        "facts": facts, "detail": {k: v for k, v in (detail or {}).items() if v is not None},
        "rate": _value(facts.get("rate")), "rate_unit": _unit(facts.get("rate")),
        "dose_rate": _value(facts.get("dose_rate")),
        "dose_rate_unit": _unit(facts.get("dose_rate")),
        "volume": _value(volume), "volume_unit": _unit(volume),
        "source_event_ids": [_uuid(s) for s in sources],
        "cite_ids": [_uuid(eid), *(_uuid(s) for s in sources if kind != "volume")],
        "first_position": record.notification_id, "last_position": record.notification_id,
    }


def _episode_row(episode: dict[str, Any], doc: dict[str, Any],
                 record: StoredRecord) -> dict[str, Any]:
    meter = doc.get("meter") or {}
    medication = episode.get("medication") or {}
    return {
        "episode_id": episode["episode_id"], "facility_id": episode["facility_id"],
        "pump_id": episode["pump_id"], "channel": episode["channel"],
        "infusate_source": episode["source"], "order_id": episode["order_id"],
        "patient_id": episode["patient_id"], "patient_position": doc["patient_position"],
        "medication_name": medication.get("name"), "status": episode["status"],
        "started_at": utc_text(episode["started_at"]), "ended_at": utc_text(episode["ended_at"]),
        "end_reason": episode["end_reason"], "events_received": doc["received"],
        "telemetry_received": doc["telemetry"], "entries_produced": doc["entries"],
        "has_start": doc.get("start_event") is not None,
        "volume_calculated": _millilitres(meter.get("total")),
        "device_volume": meter.get("device"), "device_volume_at": meter.get("device_at"),
        "calculated_at_device": _millilitres(meter.get("calculated_at_device")),
        "first_position": episode["first_position"], "last_position": record.notification_id,
    }


def _millilitres(value: str | None) -> str | None:
    """A calculated volume as stored: to the microlitre (the meter itself keeps 28 digits)."""
    return text(rounded(dec(value), 3)) if value is not None else None


def _value(q: dict[str, str] | None) -> str | None:
    return q["value"] if q else None


def _unit(q: dict[str, str] | None) -> str | None:
    return q["unit"] if q else None


