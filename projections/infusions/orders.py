"""Orders and patient locations: pure folds over the order and patient streams."""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord

ORDER_FIELDS = (
    "medication", "concentration", "dose", "rate", "titration", "vtbi", "dosing_weight", "route",
    "high_alert", "continuous", "bolus", "start_at", "stop_at",
)
_ENDING = {
    "order.held": "held", "order.discontinued": "discontinued", "order.completed": "completed",
}


def fold_order(state: dict[str, Any], record: StoredRecord) -> bool:
    """Apply an order event; return whether the order's row changed."""
    kind = record.type
    data = record.data
    subject = record.subject
    at = record.event["occurred_at"]
    if kind == "order.placed":
        # Lifecycle events may have arrived first (late EHR feed): they keep their status.
        ended = state.get("ended_at") is not None
        state.update({
            "order_id": subject.get("order_id"),
            "facility_id": subject.get("facility_id") or "default",
            "patient_id": subject.get("patient_id"),
            "encounter_id": subject.get("encounter_id"),
            "placed_at": at,
            "high_alert": False, "continuous": True,
        })
        state.setdefault("verified", False)
        state.setdefault("modifications", 0)
        if not ended:
            state.update({"status": "active", "ended_at": None})
        state.update({k: data[k] for k in ORDER_FIELDS if k in data})
        return True
    if not state:
        # Until order.placed arrives the row shows what is known, with status 'unknown'.
        state.update({
            "order_id": subject.get("order_id"),
            "facility_id": subject.get("facility_id") or "default",
            "patient_id": subject.get("patient_id"), "status": "unknown", "verified": False,
            "placed_at": None, "ended_at": None, "modifications": 0,
        })
    if kind == "order.verified":
        state["verified"] = True
        state["verified_at"] = at
    elif kind == "order.modified":
        state.update({k: data[k] for k in ORDER_FIELDS if k in data})
        state["modifications"] = state.get("modifications", 0) + 1
        state["modified_at"] = at
    elif kind in _ENDING:
        state["status"] = _ENDING[kind]
        effective = data.get("effective_at") or at
        state[f"{_ENDING[kind]}_at"] = effective
        state["ended_at"] = effective
        state["end_reason"] = data.get("reason")
    elif kind == "order.released":
        state["status"] = "active"
        state["ended_at"] = None
        state["released_at"] = data.get("effective_at") or at
    return True


def fold_location(state: dict[str, Any], record: StoredRecord) -> bool:
    """Apply ``patient.located``; other patient-stream events leave the row alone."""
    if record.type != "patient.located":
        return False
    data = record.data
    state.update({
        "patient_id": record.subject.get("patient_id"),
        "facility_id": record.subject.get("facility_id") or "default",
        "unit": data["unit"], "bed": data.get("bed"), "care_area": data.get("care_area"),
        "since": record.event["occurred_at"],
    })
    return True
