"""Drug-library safety events: R13 soft-limit overrides and R28 unordered boluses.

DERS alerts are remembered on the channel (and hard ones on the patient, for R14 in
``program``); an override becomes an R13 finding, S2 when it took under the configured
seconds, exceeded the soft limit by the configured ratio, or was the n-th override of the
same infusion. A bolus is checked against the bolus its order allows: none, a larger
dose, or more than the hourly maximum within 60 minutes is R28. These are facts to
review; they do not resolve by themselves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger import units
from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies import quantities as q
from projections.discrepancies.channels import active_extras, linked_order, source_of, subject
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.world import channel_key, facility, patient_key

_KEEP_ALERTS = 10
_HOUR = 60 * clock.MINUTE


def _channel(ctx: Context, record: StoredRecord) -> dict[str, Any]:
    subject_ = record.subject
    return ctx.world.channel_entity(
        channel_key(facility(subject_), subject_["pump_id"], subject_["channel"]),
        facility(subject_), subject_["pump_id"], subject_["channel"])


def _who(ctx: Context, entity: dict[str, Any], record: StoredRecord) -> Subject:
    """The episode the alert concerns (by the event's order, else its infusate source),
    else the event's own subject: alerts fire while a nurse programs, before the start."""
    subject_ = record.subject
    order_id, source = subject_.get("order_id"), source_of(record)
    for extra in reversed(active_extras(entity)):
        linked = linked_order(ctx, extra)
        extra_order = linked["order_id"] if linked else extra.get("order_id")
        if (extra_order == order_id) if order_id else (extra["src"] == source):
            return subject(ctx, entity, extra)
    patient_id = subject_.get("patient_id") or entity["fold"].get("patient_id")
    patient = ctx.world.patients.get(patient_key(entity["facility_id"], patient_id)) \
        if patient_id else None
    return Subject(facility_id=entity["facility_id"], patient_id=patient_id,
                   order_id=subject_.get("order_id"), pump_id=entity["pump_id"],
                   channel=entity["channel"], unit=(patient or {}).get("unit"),
                   care_area=record.data.get("care_area") or (patient or {}).get("care_area"))


def on_alert_raised(ctx: Context, record: StoredRecord) -> None:
    entity = _channel(ctx, record)
    data = record.data
    alert = {
        "alert_id": data["alert_id"], "at": ctx.now, "kind": data["limit_kind"],
        "parameter": data["parameter"], "bound": data.get("bound"), "limit": data.get("limit"),
        "programmed": data.get("programmed"), "care_area": data.get("care_area"),
        "entry": data.get("library_entry_id"), "event_id": ctx.event_id,
        "channel_key": entity["key"],
    }
    entity["alerts"] = [a for a in entity["alerts"] if a["alert_id"] != alert["alert_id"]]
    entity["alerts"].append(alert)
    del entity["alerts"][:-_KEEP_ALERTS]
    ctx.world.channels.mark(entity["key"])
    patient_id = record.subject.get("patient_id") or entity["fold"].get("patient_id")
    if alert["kind"] == "hard" and patient_id:
        key = patient_key(entity["facility_id"], patient_id)
        patient = ctx.world.patient_entity(key, entity["facility_id"], patient_id)
        patient["hard_alerts"].append(alert)
        del patient["hard_alerts"][:-_KEEP_ALERTS]
        ctx.world.patients.mark(key)


def on_alert_resolved(ctx: Context, record: StoredRecord) -> None:
    entity = _channel(ctx, record)
    data = record.data
    if data["outcome"] != "overridden":
        return
    alert = next((a for a in entity["alerts"] if a["alert_id"] == data["alert_id"]), None)
    if alert is not None and alert["kind"] == "hard":
        return  # a hard limit cannot be overridden; the pump reports nonsense
    entity["overrides"] += 1
    ctx.world.channels.mark(entity["key"])
    who = _who(ctx, entity, record)
    params = ctx.params("R13", who.care_area)
    reasons = []
    seconds = data.get("seconds_to_resolve")
    if seconds is not None and Decimal(str(seconds)) < params.fast_override_s:
        reasons.append(f"overridden in {seconds} s")
    if alert is not None and alert.get("limit") and alert.get("programmed"):
        limit = q.value(alert["limit"])
        programmed = q.dose_in(alert["programmed"], alert["limit"]["unit"]) \
            or q.to_unit(alert["programmed"], alert["limit"]["unit"])
        if limit and programmed is not None and programmed >= params.over_soft_ratio * limit:
            reasons.append(f"{q.fmt(programmed / limit, 2)}x the soft limit")
    if entity["overrides"] >= params.repeat_count:
        reasons.append(f"override {entity['overrides']} on this infusion")
    parameter = alert["parameter"] if alert else "limit"
    ctx.open("R13", condition=f"{entity['key']}|{data['alert_id']}", subject=who, tracked=False,
             cases=("escalated",) if reasons else (),
             summary=f"soft {parameter} limit overridden" + (f" ({'; '.join(reasons)})"
                                                            if reasons else ""),
             evidence={"alert": alert, "seconds_to_resolve": seconds,
                       "reason_code": data.get("reason_code"),
                       "reason_text": data.get("reason_text"), "escalations": reasons,
                       "overrides_on_infusion": entity["overrides"]},
             event_ids=[alert["event_id"]] if alert else [])


def reset_overrides(ctx: Context, record: StoredRecord) -> None:
    """A new programming session starts after the program is cleared or stopped."""
    change = ctx.change
    if change is not None and change.entity["overrides"]:
        change.entity["overrides"] = 0
        ctx.world.channels.mark(change.entity["key"])


def on_bolus(ctx: Context, record: StoredRecord) -> None:
    change = ctx.change
    if change is None or not change.episodes:
        return
    entity = change.entity
    extra = entity["x"][change.episodes[-1]["episode_id"]]
    order = linked_order(ctx, extra)
    data = record.data
    allowed = (order or {}).get("bolus")
    why, dose = None, data.get("dose")
    if allowed:
        allowed_dose = allowed["dose"]
        if dose is None and data.get("volume") and order and order.get("concentration"):
            dose = _dose_of_volume(data["volume"], allowed_dose["unit"], order)
        given = q.dose_in(dose, allowed_dose["unit"]) if dose else None
        recent = [b for b in extra["boluses"] if ctx.now - b[0] < _HOUR]
        if given is None:
            why = "bolus dose unknown or in another unit than the ordered bolus"
        elif given > (q.value(allowed_dose) or Decimal(0)):
            why = f"bolus {q.fmt(given)} {allowed_dose['unit']} above the ordered " \
                  f"{allowed_dose['value']}"
        elif allowed.get("max_per_hour"):
            total = sum((Decimal(b[1]) for b in recent), given)
            limit = q.to_unit(allowed["max_per_hour"], allowed_dose["unit"])
            if limit is not None and total > limit:
                why = f"{q.fmt(total)} {allowed_dose['unit']} within an hour (max {q.fmt(limit)})"
        if given is not None:
            recent.append([ctx.now, str(given)])
        extra["boluses"] = recent
        ctx.world.channels.mark(entity["key"])
    else:
        why = "no bolus in the order" if order is not None else "no order for this infusion"
    if why is None:
        return
    cases = ("high_alert",) if ctx.high_alert(extra.get("med"), order) else ()
    ctx.open("R28", condition=f"{entity['key']}|{ctx.event_id}",
             subject=subject(ctx, entity, extra), tracked=False, cases=cases, summary=why,
             evidence={"bolus": {k: data.get(k) for k in ("dose", "volume", "rate")},
                       "allowed": allowed, "order_id": (order or {}).get("order_id")},
             event_ids=[])


def _dose_of_volume(volume: dict[str, Any], dose_unit: str, order: dict[str, Any]) -> dict | None:
    concentration = order["concentration"]
    amount, vol = concentration["amount"], concentration["volume"]
    try:
        dose = units.dose_from_volume(
            units.convert(str(volume["value"]), volume["unit"], "mL"), dose_unit,
            str(amount["value"]), amount["unit"], str(vol["value"]), vol["unit"],
            q.weight_kg(order.get("dosing_weight")))
    except units.UnitError:
        return None
    return {"value": str(dose), "unit": dose_unit}


HANDLERS = {
    "ders.limit_alert_raised": (on_alert_raised,),
    "ders.limit_alert_resolved": (on_alert_resolved,),
    "program.cleared": (reset_overrides,),
    "infusion.stopped": (reset_overrides,),
    "infusion.bolus_delivered": (on_bolus,),
}
TIMERS: dict[str, Any] = {}
