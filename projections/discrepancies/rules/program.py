"""Rules on what the nurse confirmed on the pump (``program.confirmed``) and how.

Against the order: R04 drug, R05 concentration, R06 dosing unit, R17 weight, R18 VTBI —
conditions of the episode, resolved when it is reprogrammed to match or ends. Against
the safety process: R12 basic mode (resolved when the episode ends or is reprogrammed in
library mode), R10 edits of an auto-program, R11 no auto-program, R14 a hard limit worked
around, R15 a library care area that does not fit the patient's unit, and at the start R29
a stale auto-program — facts recorded once, for review.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.ders.projection import edited_fields
from projections.discrepancies import clock
from projections.discrepancies import quantities as q
from projections.discrepancies.channels import (
    explicit_link,
    linked_order,
    same_medication,
    source_of,
    subject,
)
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.rules import episode_condition
from projections.discrepancies.rules.rate import dose_outside, rate_outside
from projections.discrepancies.world import patient_key


def _programmed(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]] | None:
    change = ctx.change
    if change is None or ctx.record is None:
        return None
    source = source_of(ctx.record)
    for episode in reversed(change.episodes):
        if episode["source"] == source and episode["status"] not in ("stopped", "completed"):
            return change.entity, change.entity["x"][episode["episode_id"]]
    return None


def on_confirmed(ctx: Context, record: StoredRecord) -> None:
    found = _programmed(ctx)
    if found is None:
        return
    entity, extra = found
    data = record.data
    condition = episode_condition(entity, extra)
    who = subject(ctx, entity, extra)
    order = linked_order(ctx, extra)
    if order is not None:
        _against_order(ctx, condition, who, extra, order, data)
    _library(ctx, condition, who, extra, order, data)
    if order is not None:
        _auto_program(ctx, entity, condition, who, extra, order, data)
    _hard_limit_workaround(ctx, entity, condition, who, data)
    _care_area(ctx, condition, who, data)


def _check(ctx: Context, rule: str, condition: str, who: Subject, bad: bool | None,
           summary: str, evidence: dict[str, Any], cases: tuple[str, ...] = ()) -> None:
    if bad is None:
        return
    if bad:
        ctx.open(rule, condition=condition, subject=who, summary=summary, evidence=evidence,
                 event_ids=[], cases=cases)
    else:
        ctx.resolve(rule, condition)


def _against_order(ctx: Context, condition: str, who: Subject, extra: dict[str, Any],
                   order: dict[str, Any], data: dict[str, Any]) -> None:
    ordered_med, pumped_med = order.get("medication"), data.get("medication")
    if explicit_link(extra) and ordered_med and pumped_med:
        by_code = bool(ordered_med.get("code") and pumped_med.get("code")
                       and ordered_med.get("system") == pumped_med.get("system"))
        comparable = by_code or ctx.params("R04", who.care_area).name_fallback
        _check(ctx, "R04", condition, who,
               not same_medication(ordered_med, pumped_med) if comparable else None,
               f"pump runs {pumped_med.get('name')}, order is for {ordered_med.get('name')}",
               {"ordered": ordered_med, "programmed": pumped_med, "order_id": order["order_id"]})
    same_conc = q.same_concentration(order.get("concentration"), data.get("concentration"))
    _check(ctx, "R05", condition, who, None if same_conc is None else not same_conc,
           "concentration on the pump differs from the order",
           {"ordered": order.get("concentration"), "programmed": data.get("concentration"),
            "order_id": order["order_id"]})
    ordered_dose, programmed_dose = order.get("dose"), data.get("dose")
    if ordered_dose and programmed_dose:
        ordered_unit, programmed_unit = q.unit(ordered_dose), q.unit(programmed_dose)
        _check(ctx, "R06", condition, who, ordered_unit != programmed_unit,
               f"pump doses in {programmed_unit}, order in {ordered_unit}",
               {"ordered_unit": ordered_unit, "programmed_unit": programmed_unit,
                "ordered_dose": ordered_dose, "programmed_dose": programmed_dose,
                "order_id": order["order_id"]})
    _weight(ctx, condition, who, order, data)
    _vtbi(ctx, condition, who, order, data)


def _weight(ctx: Context, condition: str, who: Subject, order: dict[str, Any],
            data: dict[str, Any]) -> None:
    ordered, programmed = q.weight_kg(order.get("dosing_weight")), q.weight_kg(
        data.get("dosing_weight"))
    if ordered is None or programmed is None:
        return
    params = ctx.params("R17", who.care_area)
    difference = abs(programmed - ordered)
    bad = not q.within(programmed, ordered, params.tol_pct, params.tol_floor_kg)
    cases = ("large",) if ordered > 0 and difference > params.s1_pct * ordered else ()
    _check(ctx, "R17", condition, who, bad,
           f"pump weight {q.fmt(programmed)} kg vs dosing weight {q.fmt(ordered)} kg",
           {"ordered_kg": q.fmt(ordered), "programmed_kg": q.fmt(programmed),
            "tolerance_kg": q.fmt(q.tolerance(ordered, params.tol_pct, params.tol_floor_kg)),
            "order_id": order["order_id"]}, cases)


def _vtbi(ctx: Context, condition: str, who: Subject, order: dict[str, Any],
          data: dict[str, Any]) -> None:
    ordered, programmed = q.to_unit(order.get("vtbi"), "mL"), q.to_unit(data.get("vtbi"), "mL")
    if ordered is None or programmed is None:
        return
    limit = ordered * (1 + ctx.params("R18", who.care_area).overfill_pct)
    _check(ctx, "R18", condition, who, programmed > limit,
           f"VTBI {q.fmt(programmed)} mL above the ordered {q.fmt(ordered)} mL",
           {"ordered_ml": q.fmt(ordered), "programmed_ml": q.fmt(programmed),
            "limit_ml": q.fmt(limit), "order_id": order["order_id"]})


def _library(ctx: Context, condition: str, who: Subject, extra: dict[str, Any],
             order: dict[str, Any] | None, data: dict[str, Any]) -> None:
    params = ctx.params("R12", who.care_area)
    bypass = data["library_mode"] == "basic" or (
        params.missing_entry_is_bypass and not data.get("library_entry_id"))
    cases = ("high_alert",) if ctx.high_alert(data.get("medication"), order) else ()
    _check(ctx, "R12", condition, who, bypass,
           f"{data['medication'].get('name')} programmed in {data['library_mode']} mode",
           {"library_mode": data["library_mode"], "library_entry_id": data.get("library_entry_id"),
            "care_area": data.get("care_area")}, cases)


_COMPARED = ("medication", "concentration", "rate", "dose", "vtbi", "dosing_weight")


def _auto_program(ctx: Context, entity: dict[str, Any], condition: str, who: Subject,
                  extra: dict[str, Any], order: dict[str, Any], data: dict[str, Any]) -> None:
    extra["confirmed"] = {f: data.get(f) for f in _COMPARED}
    extra["confirmed_at"], extra["confirmed_event"] = ctx.now, ctx.event_id
    if data["mode"] == "auto":
        request = (entity["fold"].get("requests") or {}).get(data.get("request_id") or "")
        if request is not None:
            _edited(ctx, entity, extra, order, request)
        return  # an auto-program whose request is late is judged when the request arrives
    params = ctx.params("R11", who.care_area)
    interoperable = params.all_pumps_interoperable and \
        entity["pump_id"] not in params.non_interoperable_pumps
    if interoperable and extra["how"] != "ambiguous":
        # "No auto-program request" is a condition of absence: the BCMA's request may
        # arrive after the pump's confirmation, so it is judged after the allowance.
        ctx.arm("R11", f"R11|{condition}|{ctx.event_id}", ctx.now, channel=entity["key"],
                episode=extra["id"], condition=f"{condition}|{ctx.event_id}",
                order=order["key"])


def _edited(ctx: Context, entity: dict[str, Any], extra: dict[str, Any],
            order: dict[str, Any], request: dict[str, Any]) -> None:
    if extra.get("r10_checked") == extra["confirmed_event"]:
        return
    extra["r10_checked"] = extra["confirmed_event"]
    who = subject(ctx, entity, extra)
    confirmed = extra["confirmed"]
    fields = [f for f in edited_fields(request, confirmed)
              if f in ctx.params("R10", who.care_area).fields]
    if not fields:
        return
    rate = q.flow(confirmed.get("rate"))
    outside = (rate is not None and rate_outside(ctx, order, rate, who.care_area)) or \
        dose_outside(order, confirmed.get("dose"), True)
    ctx.open("R10", condition=f"{episode_condition(entity, extra)}|{extra['confirmed_event']}",
             subject=who, tracked=False, cases=("outside_order",) if outside else (),
             trigger=extra["confirmed_event"], opened_at=extra["confirmed_at"],
             summary=f"auto-program edited on the pump: {', '.join(fields)}",
             evidence={"edited_fields": fields,
                       "requested": {f: request.get(f) for f in fields},
                       "confirmed": {f: confirmed.get(f) for f in fields},
                       "request_id": extra.get("request_id")}, event_ids=[])


def on_requested(ctx: Context, record: StoredRecord) -> None:
    """A request that arrived after the confirmation it produced: judge the edits now."""
    change = ctx.change
    if change is None:
        return
    request_id = record.data["request_id"]
    request = (change.entity["fold"].get("requests") or {}).get(request_id)
    for extra in change.entity["x"].values():
        order = linked_order(ctx, extra)
        if request is not None and order is not None and extra.get("request_id") == request_id \
                and extra.get("confirmed") and (extra.get("program") or {}).get("mode") == "auto":
            _edited(ctx, change.entity, extra, order, request)


def fire_manual(ctx: Context, timer: dict[str, Any]) -> None:
    entity = ctx.world.channels.get(timer["channel"])
    extra = entity["x"].get(timer["episode"]) if entity else None
    order = ctx.world.orders.get(timer["order"])
    if entity is None or extra is None or order is None:
        return
    who = subject(ctx, entity, extra)
    window = clock.minutes(ctx.params("R11", who.care_area).auto_request_window_min)
    requests = (entity["fold"].get("requests") or {}).values()
    if any(r.get("order_id") == order["order_id"]
           and 0 <= timer["due"] - clock.parse(r["requested_at"]) <= window for r in requests):
        return
    ctx.open("R11", condition=timer["condition"], subject=who, tracked=False,
             trigger=timer["trigger"], opened_at=timer["due"],
             summary=f"{(extra.get('med') or {}).get('name')} programmed by hand although "
                     f"order {order['order_id']} could be auto-programmed",
             evidence={"mode": "manual", "order_id": order["order_id"],
                       "library_mode": (extra.get("program") or {}).get("library_mode")},
             event_ids=[])


def _hard_limit_workaround(ctx: Context, entity: dict[str, Any], condition: str,
                           who: Subject, data: dict[str, Any]) -> None:
    window = clock.minutes(ctx.params("R14", who.care_area).window_min)
    alerts = [a for a in entity["alerts"] if a["kind"] == "hard"]
    if who.patient_id:
        patient = ctx.world.patients.get(patient_key(who.facility_id, who.patient_id))
        alerts += [a for a in (patient or {}).get("hard_alerts", [])
                   if a["channel_key"] != entity["key"]]
    for alert in sorted(alerts, key=lambda a: a["at"], reverse=True):
        if not 0 <= ctx.now - alert["at"] <= window:
            continue
        basic = data["library_mode"] == "basic"
        other_area = bool(data.get("care_area") and alert.get("care_area")
                          and data["care_area"] != alert["care_area"])
        if basic or other_area:
            how = "basic mode" if basic else f"care area {data['care_area']}"
            ctx.open("R14", condition=f"{condition}|{ctx.event_id}", subject=who,
                     tracked=False,
                     summary=f"hard limit ({alert['parameter']}) then programmed in {how} "
                             f"{(ctx.now - alert['at']) // clock.SECOND} s later",
                     evidence={"alert": alert, "library_mode": data["library_mode"],
                               "care_area": data.get("care_area")},
                     event_ids=[alert["event_id"]])
            return


def _care_area(ctx: Context, condition: str, who: Subject, data: dict[str, Any]) -> None:
    if data["library_mode"] != "library" or not data.get("care_area") or not who.patient_id:
        return
    patient = ctx.world.patients.get(patient_key(who.facility_id, who.patient_id))
    expected = (patient or {}).get("care_area")
    if not expected:
        return
    allowed = ctx.params("R15", expected).allowed_profiles.get(expected, (expected,))
    _check(ctx, "R15", condition, who, data["care_area"] not in allowed,
           f"library care area {data['care_area']} on a patient in {expected}",
           {"programmed_care_area": data["care_area"], "patient_care_area": expected,
            "allowed": list(allowed), "unit": (patient or {}).get("unit")})


def on_started(ctx: Context, record: StoredRecord) -> None:
    """R29: an auto-program applied long after it was requested, or after the order changed."""
    change = ctx.change
    if change is None:
        return
    for episode_id in change.started:
        extra = change.entity["x"][episode_id]
        program = extra.get("program") or {}
        request = (change.entity["fold"].get("requests") or {}).get(extra.get("request_id") or "")
        if program.get("mode") != "auto" or request is None:
            continue
        who = subject(ctx, change.entity, extra)
        requested = clock.parse(request["requested_at"])
        order = linked_order(ctx, extra)
        stale = ctx.now - requested > clock.minutes(ctx.params("R29", who.care_area).stale_min)
        modified = order is not None and order.get("modified_at") is not None and \
            requested < order["modified_at"] <= ctx.now
        if stale or modified:
            why = "after the order was modified" if modified else \
                f"{(ctx.now - requested) // clock.MINUTE} min after the request"
            ctx.open("R29", condition=f"{episode_condition(change.entity, extra)}|{ctx.event_id}",
                     subject=who, tracked=False, summary=f"auto-program started {why}",
                     evidence={"requested_at": request["requested_at"],
                               "request_id": extra.get("request_id"),
                               "order_modified_at": clock.iso(order.get("modified_at"))
                               if order else None}, event_ids=[])


def on_episode_end(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    condition = episode_condition(entity, extra)
    for rule in ("R04", "R05", "R06", "R12", "R15", "R17", "R18"):
        ctx.resolve(rule, condition)


HANDLERS = {"program.confirmed": (on_confirmed,), "infusion.started": (on_started,),
            "program.auto_requested": (on_requested,)}
TIMERS = {"R11": fire_manual}
ON_EPISODE_END = (on_episode_end,)
