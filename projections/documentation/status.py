"""An entry's documentation state from its linked actions, and its chart-ready document.

Pure functions over rows, so they are tested without a database:

* **status** — ``retracted`` if a retraction reached the entry (naming its pump event, the
  entry itself, or a validation / manual entry of it), else ``edited`` if an edit stands,
  else ``validated`` if validated or charted by hand, else ``proposed``. A retraction that
  names an *edit* voids that edit only (the value reverts to what was validated).
* **charted values** — an edit keeps both numbers: ``device`` (what the pump reported, as
  the EHR showed it) and ``charted`` (what the nurse put in the chart). A validation charts
  the values it carries; fields it leaves out are charted as the device reported them.
* **revision** — the greatest ledger position among the entry's own events, its episode's
  patient association and its linked actions: the version of the entry, the same on every
  rebuild whatever the batch boundaries were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.documentation.model import KIND_STATUS, utc_text

_CHARTED_FIELDS = ("rate", "dose_rate", "volume_infused")


def field_key(kind: str, charted_field: str) -> str:
    """Which of an entry's values a charted field means: the volume of an interval or a
    bolus is charted as "volume infused" in the EHR's intake flowsheet."""
    if charted_field == "volume_infused" and kind in ("volume", "bolus"):
        return "volume"
    return charted_field


@dataclass
class DocState:
    status: str
    fhir_status: str
    charted: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    validated_at: str | None = None
    validated_by: str | None = None
    revision: int = 0

    def charted_value(self, key: str, facts: Mapping[str, Any]) -> str | None:
        """The number in the chart for ``key`` (None while proposed or after retraction)."""
        if self.status not in ("validated", "edited"):
            return None
        entry = self.charted.get(key)
        quantity = entry["charted"] if entry else facts.get(key)
        return quantity["value"] if quantity else None


def documentation_state(entry: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]
                        ) -> DocState:
    """The state of ``entry`` given every action linked to it (in ledger order)."""
    actions = sorted(actions, key=lambda a: a["position"])
    kind, facts = entry["kind"], entry["facts"]
    edits = {str(a["event_id"]) for a in actions if a["action"] == "edited"}
    retractions = [a for a in actions if a["action"] == "retracted"]
    voided = {str(r["refers_to"]) for r in retractions if str(r["refers_to"]) in edits}
    retracted = any(str(r["refers_to"]) not in edits for r in retractions)
    state = DocState(status="proposed", fhir_status=entry["administration_status"])
    for action in actions:
        voids = str(action["event_id"]) in voided
        state.history.append(_history(action, voids))
        if action["action"] in ("validated", "entered_manually"):
            _validate(state, action, kind, facts)
        elif action["action"] == "edited" and not voids:
            _edit(state, action, kind, facts)
    if entry["origin"] == "manual" and state.validated_at is None:
        state.validated_at = utc_text(entry["device_time"])
    if retracted:
        state.status, state.fhir_status = "retracted", "entered-in-error"
    elif any(a["action"] == "edited" and str(a["event_id"]) not in voided for a in actions):
        state.status = "edited"
    elif state.validated_at is not None:
        state.status = "validated"
    positions = [entry["last_position"], entry.get("patient_position") or 0,
                 *(a["position"] for a in actions)]
    state.revision = max(positions)
    return state


def _history(action: Mapping[str, Any], voided: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event_id": str(action["event_id"]), "action": action["action"],
        "at": utc_text(action["occurred_at"]), "recorded_at": utc_text(action["recorded_at"]),
        "actor": {"id": action["actor_id"], "role": action["actor_role"]},
    }
    if action["action"] == "edited":
        item["field"] = action["field"]
        item["device_value"] = _q(action["device_value"], action["device_unit"])
        item["charted_value"] = _q(action["charted_value"], action["charted_unit"])
    if action.get("reason") is not None:
        item["reason"] = action["reason"]
    if voided:
        item["voided"] = True
    return item


def _validate(state: DocState, action: Mapping[str, Any], kind: str,
              facts: Mapping[str, Any]) -> None:
    if state.validated_at is None:
        state.validated_at = utc_text(action["occurred_at"])
        state.validated_by = action["actor_id"]
    if kind == "infusion":
        return  # the parent is validated through its start; its values keep moving
    for name in _CHARTED_FIELDS:
        value = (action.get("charted") or {}).get(name)
        if value is not None:
            key = field_key(kind, name)
            state.charted[key] = {"device": facts.get(key), "charted": value,
                                  "source": action["action"],
                                  "event_id": str(action["event_id"])}


def _edit(state: DocState, action: Mapping[str, Any], kind: str,
          facts: Mapping[str, Any]) -> None:
    if state.validated_at is None:
        state.validated_at = utc_text(action["occurred_at"])
        state.validated_by = action["actor_id"]
    key = field_key(kind, action["field"])
    state.charted[key] = {
        "device": _q(action["device_value"], action["device_unit"]),
        "charted": _q(action["charted_value"], action["charted_unit"]),
        "source": "edited", "event_id": str(action["event_id"]), "reason": action["reason"],
    }


def _q(value: Any, unit: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"value": value if isinstance(value, str) else format(value, "f"), "unit": unit or ""}


def entry_document(entry: Mapping[str, Any], state: DocState) -> dict[str, Any]:
    """The chart-ready entry as the feed publishes it (decimals as strings, UTC times)."""
    period = None
    if entry["period_start"] is not None or entry["period_end"] is not None:
        period = {"start": utc_text(entry["period_start"]), "end": utc_text(entry["period_end"])}
    return {
        "entry_id": str(entry["entry_id"]), "revision": state.revision, "kind": entry["kind"],
        "origin": entry["origin"], "status": state.status,
        "administration_status": state.fhir_status,
        "episode_id": _str(entry["episode_id"]),
        "parent_entry_id": _str(entry["parent_entry_id"]),
        "facility_id": entry["facility_id"], "patient_id": entry["patient_id"],
        "order_id": entry["order_id"], "pump_id": entry["pump_id"],
        "channel": entry["channel"], "infusate_source": entry["infusate_source"],
        "medication": entry["medication"], "concentration": entry["concentration"],
        "device_time": utc_text(entry["device_time"]), "period": period,
        "received_at": utc_text(entry["received_at"]),
        "ledger_time": utc_text(entry["ledger_time"]),
        "values": dict(entry["facts"]), "charted": state.charted,
        "reason": entry["reason"], "detail": dict(entry["detail"]),
        "source_event_ids": [str(s) for s in entry["source_event_ids"]],
        "validated_at": state.validated_at, "validated_by": state.validated_by,
        "documentation": state.history,
    }


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


__all__ = ["KIND_STATUS", "DocState", "documentation_state", "entry_document", "field_key"]
