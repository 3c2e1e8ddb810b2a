"""What the EHR says about the chart: documentation events of an order stream, folded.

Each ``documentation.*`` event becomes one *action* row; ``documentation.entered_manually``
also becomes a ``manual`` entry of its own (values a nurse charted with no device data
behind them). Which entries an action documents is decided later, by ``links``, from what
the action *cites*:

* ``validated`` cites its ``source_event_ids`` (pump event ids, or ids of entries the feed
  published — the EHR may quote our resource ids back); without any, it documents the
  entries of its order (and pump/channel) whose device time is its ``observed_at``;
* ``entered_manually`` cites itself (its manual entry);
* ``edited`` and ``retracted`` cite ``corrects_event_id``. An edit that names nothing
  edits what was charted last on that order (and pump/channel): the stream's most recent
  validation or manual entry, remembered by this fold — an edit is the nurse changing the
  value she is validating. A retraction must name its entry (the contract requires it).

The fold is per order stream, so "most recent" means in the order's own event order. The
order's own events (same stream) only lend their medication to manual entries.
"""

from __future__ import annotations

import uuid
from typing import Any

from ledger.store.reader import StoredRecord
from projections.documentation.model import entry_id, quantity_or_none, utc_text

ACTIONS = {
    "documentation.validated": "validated", "documentation.edited": "edited",
    "documentation.entered_manually": "entered_manually",
    "documentation.retracted": "retracted",
}
_CHARTED = ("rate", "dose_rate", "volume_infused")


def _scope(subject: dict[str, Any]) -> str:
    return f"{subject.get('pump_id') or ''}|{subject.get('channel') or ''}"


def fold_order(state: dict[str, Any], record: StoredRecord) -> None:
    """Remember what the order says a manual entry needs (medication, concentration)."""
    order = state.setdefault("order", {})
    for key in ("medication", "concentration"):
        if key in record.data:
            order[key] = record.data[key]


def fold_documentation(state: dict[str, Any], record: StoredRecord) -> tuple[
        dict[str, Any], dict[str, Any] | None]:
    """The action row of a documentation event, and the manual entry it creates (if any)."""
    action = ACTIONS[record.type]
    subject, data, event = record.subject, record.data, record.event
    event_id = str(record.event_id)
    refers_to = event.get("corrects_event_id")
    last: dict[str, str] = state.setdefault("last_charted", {})
    if action == "edited" and refers_to is None:
        refers_to = last.get(_scope(subject) if subject.get("pump_id") else "*")
    if action in ("validated", "entered_manually"):
        last[_scope(subject)] = event_id
        last["*"] = event_id
    cited = {
        "validated": [str(s) for s in data.get("source_event_ids") or []],
        "entered_manually": [event_id],
        "edited": [refers_to] if refers_to else [],
        "retracted": [refers_to] if refers_to else [],
    }[action]
    actor = event.get("actor") or {}
    device_value = quantity_or_none(data, "device_value")
    charted_value = quantity_or_none(data, "charted_value")
    values = {k: quantity_or_none(data, k) for k in _CHARTED if data.get(k)}
    row = {
        "event_id": event_id, "action": action,
        "facility_id": subject.get("facility_id") or "default",
        "order_id": subject.get("order_id"), "patient_id": subject.get("patient_id"),
        "encounter_id": subject.get("encounter_id"), "pump_id": subject.get("pump_id"),
        "channel": subject.get("channel"), "observed_at": utc_text(data.get("observed_at")),
        "cited": [uuid.UUID(c) for c in cited],
        "refers_to": uuid.UUID(refers_to) if refers_to else None,
        "field": data.get("field"),
        "device_value": device_value["value"] if device_value else None,
        "device_unit": device_value["unit"] if device_value else None,
        "charted_value": charted_value["value"] if charted_value else None,
        "charted_unit": charted_value["unit"] if charted_value else None,
        "charted": values, "reason": data.get("reason"),
        "has_rate": "rate" in values, "has_dose_rate": "dose_rate" in values,
        "has_volume": "volume_infused" in values,
        "actor_id": actor.get("id"), "actor_role": actor.get("role"),
        "occurred_at": utc_text(record.occurred_at), "recorded_at": utc_text(record.recorded_at),
        "position": record.notification_id,
    }
    manual = None
    if action == "entered_manually":
        manual = _manual_entry(row, record, values, state.get("order") or {})
    return row, manual


def _manual_entry(action: dict[str, Any], record: StoredRecord, values: dict[str, Any],
                  order: dict[str, Any]) -> dict[str, Any]:
    eid = entry_id("manual", action["event_id"])
    rate, dose_rate, volume = (values.get(k) for k in _CHARTED)
    return {
        "entry_id": eid, "episode_id": None, "parent_entry_id": None, "kind": "manual",
        "origin": "manual", "facility_id": action["facility_id"], "pump_id": action["pump_id"],
        "channel": action["channel"], "infusate_source": None, "order_id": action["order_id"],
        "patient_id": action["patient_id"], "medication": order.get("medication"),
        "concentration": order.get("concentration"),
        "device_time": action["observed_at"], "period_start": None, "period_end": None,
        "received_at": utc_text(record.received_at), "ledger_time": action["recorded_at"],
        "administration_status": "completed", "reason": None, "facts": values, "detail": {},
        "rate": rate["value"] if rate else None, "rate_unit": rate["unit"] if rate else None,
        "dose_rate": dose_rate["value"] if dose_rate else None,
        "dose_rate_unit": dose_rate["unit"] if dose_rate else None,
        "volume": volume["value"] if volume else None,
        "volume_unit": volume["unit"] if volume else None,
        "source_event_ids": [uuid.UUID(action["event_id"])],
        "cite_ids": [uuid.UUID(eid), uuid.UUID(action["event_id"])],
        "first_position": action["position"], "last_position": action["position"],
    }
