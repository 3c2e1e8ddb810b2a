"""Orders and patients in the engine's model: folding their events, and order activity.

An order is *active* as EVENTS.md defines: from ``order.placed`` (or its ``start_at``)
until held, discontinued, completed or past ``stop_at``. Lifecycle events may arrive
before ``order.placed`` (a lagging EHR feed); they keep their effect. The order keeps a
short history of charting (``docs``, ``edits``) for the documentation rules, and the
patient its ADT unit and care area, which findings record and auditors filter by.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.context import Context
from projections.discrepancies.quantities import is_dose_rate
from projections.discrepancies.world import facility, patient_key

ORDER_FIELDS = (
    "medication", "concentration", "dose", "rate", "titration", "vtbi", "dosing_weight",
    "route", "high_alert", "continuous", "bolus",
)
ENDING = {"order.held": "held", "order.discontinued": "discontinued",
          "order.completed": "completed"}
_KEEP_DOCS = 40


def fold_order(ctx: Context, record: StoredRecord) -> dict[str, Any]:
    """Apply an order lifecycle event to the order entity; return the entity."""
    subject, data, kind = record.subject, record.data, record.type
    fac = facility(subject)
    order = ctx.world.order_entity(record.stream, fac, subject["order_id"])
    previous_patient = order.get("patient_key")
    order["seen"] = ctx.now
    if subject.get("patient_id") and (kind == "order.placed" or not order.get("patient_id")):
        order["patient_id"] = subject["patient_id"]
        order["patient_key"] = patient_key(fac, subject["patient_id"])
    if kind == "order.placed":
        order.update({k: data[k] for k in ORDER_FIELDS if k in data})
        order.setdefault("high_alert", False)
        order.setdefault("continuous", True)
        order["placed_at"] = ctx.now
        order["placed_event"] = ctx.event_id
        order["version_at"] = ctx.now
        order["start_at"] = clock.parse(data["start_at"]) if data.get("start_at") else None
        order["stop_at"] = clock.parse(data["stop_at"]) if data.get("stop_at") else None
        order["basis"] = "dose" if is_dose_rate(data.get("dose")) else "rate"
        if order["status"] == "unknown":
            order["status"] = "active"
    elif kind == "order.modified":
        order.update({k: data[k] for k in ORDER_FIELDS if k in data})
        if "start_at" in data:
            order["start_at"] = clock.parse(data["start_at"]) if data["start_at"] else None
        if "stop_at" in data:
            order["stop_at"] = clock.parse(data["stop_at"]) if data["stop_at"] else None
        if is_dose_rate(data.get("dose")):
            order["basis"] = "dose"
        elif data.get("rate"):
            order["basis"] = "rate"
        order["modified_at"] = ctx.now
        order["version_at"] = max(ctx.now, order.get("version_at") or ctx.now)
    elif kind == "order.verified":
        order["verified_at"] = ctx.now
    elif kind in ENDING:
        order["status"] = ENDING[kind]
        order["ended_at"] = clock.parse(data["effective_at"]) if data.get("effective_at") \
            else ctx.now
        order["end_event"] = ctx.event_id
    elif kind == "order.released":
        order["status"] = "active" if order.get("placed_at") is not None else "unknown"
        order["ended_at"] = None
        order["released_at"] = clock.parse(data["effective_at"]) if data.get("effective_at") \
            else ctx.now
    ctx.world.index_order(order, previous_patient)
    return order


def begins(order: dict[str, Any]) -> int | None:
    """When the order became active: its start_at, else its placement."""
    if order.get("placed_at") is None:
        return None
    return order.get("start_at") or order["placed_at"]


def active_at(order: dict[str, Any] | None, at: int) -> bool:
    """Whether ``order`` was active at event time ``at`` (EVENTS.md's definition)."""
    if order is None or order.get("placed_at") is None:
        return False
    begin = begins(order)
    if begin is None or at < begin:
        return False
    if order.get("stop_at") is not None and at >= order["stop_at"]:
        return False
    ended = order.get("ended_at")
    return not (ended is not None and order["status"] != "active" and at >= ended)


def remember_doc(order: dict[str, Any], entry: list[Any], field: str = "docs") -> None:
    history = order.setdefault(field, [])
    history.append(entry)
    del history[:-_KEEP_DOCS]


def fold_patient(ctx: Context, record: StoredRecord) -> None:
    """``patient.located``: the unit and care area findings record for the patient."""
    if record.type != "patient.located":
        return
    subject, data = record.subject, record.data
    fac = facility(subject)
    patient = ctx.world.patient_entity(record.stream, fac, subject["patient_id"])
    patient.update({"unit": data["unit"], "bed": data.get("bed"),
                    "care_area": data.get("care_area"), "since": ctx.now})
    ctx.world.patients.mark(record.stream)
