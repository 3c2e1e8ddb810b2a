"""Charting: R03 charted value vs pump, R20/R21 start or rate change not charted in time.

R20/R21 are deadlines armed at ``infusion.started`` / ``infusion.rate_changed``; a
``documentation.validated`` or ``documentation.entered_manually`` of the same order (and
channel, when the chart names one) whose ``observed_at`` is not before the pump event
answers them — in time when it was made by the deadline; a later chart resolves the
finding. R03 compares a chart's rate and dose rate with the pump's programmed segments
around ``observed_at`` (±alignment), and counts a documentation edit made just before the
validation that moved a device value beyond tolerance. A retraction or correction of the
chart resolves its R03 finding.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies import quantities as q
from projections.discrepancies.channels import linked_order, source_of, subject
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.orders import remember_doc
from projections.discrepancies.quantities import same_quantity
from projections.discrepancies.rules import episode_condition, remember_timer
from projections.discrepancies.world import channel_key, facility, pump_key

_KEEP_R03 = 20
#: An edit recorded at most this long after a validation is part of that charting act
#: (the EHR sent the two events in the other order).
_SAME_ACT = 60 * clock.SECOND


def _event_episode(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]] | None:
    change = ctx.change
    if change is None or ctx.record is None or change.skipped:
        return None
    source = source_of(ctx.record)
    for episode in reversed(change.episodes):
        if episode["source"] == source:
            return change.entity, change.entity["x"][episode["episode_id"]]
    return None


def _matches(doc: list[Any], entity: dict[str, Any]) -> bool:
    """Whether a remembered chart [observed, made, pump, channel, id] fits the channel."""
    return doc[2] is None or (doc[2] == entity["pump_id"] and doc[3] == entity["channel"])


def arm_charting(ctx: Context, record: StoredRecord) -> None:
    found = _event_episode(ctx)
    if found is None:
        return
    entity, extra = found
    rule = "R20" if record.type == "infusion.started" else "R21"
    condition = episode_condition(entity, extra)
    due = ctx.now + clock.minutes(ctx.params(rule).window_min)
    timer_id = f"{rule}|{condition}|{ctx.event_id}"
    order = linked_order(ctx, extra)
    timer = ctx.arm(rule, timer_id, due, pump=pump_key(entity["facility_id"], entity["pump_id"]),
                    channel=entity["key"], episode=extra["id"], condition=condition)
    if timer is None:
        return
    remember_timer(ctx, extra, rule, timer_id)
    for doc in (order or {}).get("docs", []):
        # A chart that arrived before the pump event (late pump data) still answers it.
        if doc[0] >= ctx.now and _matches(doc, entity):
            ctx.answer(timer_id, doc[1], doc[4])


def fire_undocumented(ctx: Context, timer: dict[str, Any]) -> None:
    entity = ctx.world.channels.get(timer["channel"])
    extra = entity["x"].get(timer["episode"]) if entity else None
    if entity is None or extra is None:
        return
    what = "start" if timer["rule"] == "R20" else "rate change"
    finding = ctx.open(timer["rule"], condition=f"{timer['condition']}|{timer['trigger']}",
                       subject=subject(ctx, entity, extra), tracked=False,
                       trigger=timer["trigger"], opened_at=timer["due"],
                       triggered_at=timer["armed_at"],
                       summary=f"{what} at {clock.iso(timer['armed_at'])} not charted by "
                               f"{clock.iso(timer['due'])}",
                       evidence={"pump_event_at": clock.iso(timer["armed_at"]),
                                 "deadline": clock.iso(timer["due"])}, event_ids=[])
    if finding is None:
        return
    if timer.get("answer") is not None:
        ctx.settle(finding, timer)
    else:
        extra["fired"].append([timer["rule"], timer["armed_at"], finding["finding_id"]])
        ctx.world.channels.mark(entity["key"])


def _doc_episodes(ctx: Context, order: dict[str, Any], subject_: dict[str, Any]
                  ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    if subject_.get("pump_id") and subject_.get("channel"):
        key = channel_key(facility(subject_), subject_["pump_id"], subject_["channel"])
        channel = ctx.world.channels.get(key)
        for extra in (channel or {}).get("x", {}).values():
            # A chart is of one order: an episode running no (or another) order is not it.
            if channel is not None and (extra["order"] == order["key"]
                                        or extra.get("order_id") == order["order_id"]):
                found.append((channel, extra))
    else:
        for key, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
            entity = ctx.world.channels.get(key)
            extra = entity["x"].get(episode_id) if entity else None
            if entity is not None and extra is not None:
                found.append((entity, extra))
    return found


def on_charted(ctx: Context, record: StoredRecord) -> None:
    order = ctx.world.orders.get(record.stream)
    if order is None:
        return
    data, subject_ = record.data, record.subject
    observed = clock.parse(data["observed_at"])
    charted = {k: data[k] for k in ("rate", "dose_rate", "volume_infused") if data.get(k)}
    remember_doc(order, [observed, ctx.now, subject_.get("pump_id"), subject_.get("channel"),
                         ctx.event_id, charted])
    episodes = _doc_episodes(ctx, order, subject_)
    for entity, extra in episodes:
        for rule, timer_id in extra["timers"]:
            timer = ctx.timers.get(timer_id)
            if rule in ("R20", "R21") and timer is not None and timer["armed_at"] <= observed:
                ctx.answer(timer_id)
        fired = extra["fired"]
        for entry in [e for e in fired if e[1] <= observed]:
            ctx.book.resolve_id(entry[2], ctx.now, ctx.event_id, ctx.position)
            fired.remove(entry)
        ctx.world.channels.mark(entity["key"])
    _corrects(ctx, record, order)
    covering = [(e, x) for e, x in episodes if x["started"] is not None
                and x["started"] <= observed and (x["ended"] is None or x["ended"] >= observed)]
    _r03(ctx, record, order, observed, covering[-1] if covering else None)


def _segments_at(extra: dict[str, Any], observed: int, align: int,
                 named: list[str]) -> list[list[Any]]:
    """The pump segments a chart may describe: the one in effect at observed_at and any
    neighbour within the alignment — only those of them it names, if it names some."""
    segments = extra["segments"]
    index = max((i for i, s in enumerate(segments) if s[0] <= observed), default=None)
    if index is None:
        return []
    chosen = [segments[index]]
    if index > 0 and observed - segments[index][0] <= align:
        chosen.append(segments[index - 1])
    if index + 1 < len(segments) and segments[index + 1][0] - observed <= align:
        chosen.append(segments[index + 1])
    return [s for s in chosen if s[3] in named] or chosen


def _r03(ctx: Context, record: StoredRecord, order: dict[str, Any], observed: int,
         found: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    data = record.data
    care_area = None
    if found is not None:
        care_area = ((found[1].get("program") or {}).get("care_area"))
    params = ctx.params("R03", care_area)
    mismatches: list[dict[str, Any]] = []
    if found is not None:
        candidates = _segments_at(found[1], observed, clock.minutes(params.align_min),
                                  data.get("source_event_ids") or [])
        charted = q.flow(data.get("rate"))
        rates = [r for r in (q.flow(s[1]) for s in candidates) if r is not None]
        if charted is not None and rates and not any(
                q.within(charted, r, params.rate_tol_pct, params.rate_tol_floor_ml_h)
                for r in rates):
            mismatches.append({"field": "rate", "charted": data["rate"],
                               "pump": [s[1] for s in candidates]})
        dose = data.get("dose_rate")
        doses = [d for d in (q.dose_in(s[2], dose["unit"]) for s in candidates) if d is not None] \
            if dose else []
        if dose and doses and not any(
                q.within(q.value(dose) or Decimal(0), d, params.dose_rate_tol_pct, Decimal(0))
                for d in doses):
            mismatches.append({"field": "dose_rate", "charted": dose,
                               "pump": [s[2] for s in candidates]})
    window = clock.minutes(params.edit_window_min)
    edit_ids = []
    # Edits made just before this validation belong to it, and to no later chart.
    recent = [e for e in order.get("edits", []) if 0 <= ctx.now - e[0] <= window]
    if recent:
        order["edits"] = [e for e in order["edits"] if e not in recent]
    for _at, field, device, charted_value, event_id in recent:
        if _edit_within(params, field, device, charted_value):
            continue
        mismatches.append({"field": field, "charted": charted_value, "device": device,
                           "edit_event_id": event_id})
        edit_ids.append(event_id)
    if not mismatches:
        return
    who = subject(ctx, *found) if found is not None else Subject(
        facility_id=order["facility_id"], patient_id=order.get("patient_id"),
        order_id=order["order_id"], pump_id=record.subject.get("pump_id"),
        channel=record.subject.get("channel"))
    cases = ("high_alert",) if ctx.high_alert(order.get("medication"), order) else ()
    fields = ", ".join(sorted({m["field"] for m in mismatches}))
    finding = ctx.open("R03", condition=f"{order['key']}|{ctx.event_id}", subject=who,
                       tracked=False, cases=cases,
                       summary=f"charted {fields} differs from the pump at "
                               f"{clock.iso(observed)}",
                       evidence={"observed_at": data["observed_at"], "mismatches": mismatches,
                                 "source_event_ids": data.get("source_event_ids", [])},
                       event_ids=[*edit_ids, *data.get("source_event_ids", [])])
    if finding is not None:
        charts = order.setdefault("r03", {})
        charts[ctx.event_id] = finding["finding_id"]
        for stale in list(charts)[:-_KEEP_R03]:
            del charts[stale]


def _edit_within(params: Any, field: str, device: dict[str, Any], charted: dict[str, Any]) -> bool:
    if field == "rate":
        a, b = q.flow(charted), q.flow(device)
        return a is None or b is None or q.within(a, b, params.rate_tol_pct,
                                                  params.rate_tol_floor_ml_h)
    if field == "volume_infused":
        a, b = q.to_unit(charted, "mL"), q.to_unit(device, "mL")
        return a is None or b is None or q.within(a, b, params.volume_tol_pct,
                                                  params.volume_tol_floor_ml)
    a, b = q.dose_in(charted, device["unit"]), q.value(device)
    return a is None or b is None or q.within(a, b, params.dose_rate_tol_pct, Decimal(0))


def _corrects(ctx: Context, record: StoredRecord, order: dict[str, Any]) -> None:
    corrected = record.event.get("corrects_event_id")
    fid = order.get("r03", {}).pop(corrected, None) if corrected else None
    if fid is not None:
        ctx.book.resolve_id(fid, ctx.now, ctx.event_id, ctx.position)


def on_edited(ctx: Context, record: StoredRecord) -> None:
    order = ctx.world.orders.get(record.stream)
    if order is None:
        return
    data = record.data
    # The chart this edit belongs to charted the edited value (same act, other order).
    chart = next((d for d in reversed(order.get("docs", []))
                  if 0 <= ctx.now - d[1] <= _SAME_ACT
                  and d[2] in (None, record.subject.get("pump_id"))
                  and same_quantity(d[5].get(data["field"]), data["charted_value"])), None)
    if chart is None:
        remember_doc(order, [ctx.now, data["field"], data["device_value"],
                             data["charted_value"], ctx.event_id], "edits")
        return
    # The validation came first: judge the edit as part of it.
    params = ctx.params("R03")
    if _edit_within(params, data["field"], data["device_value"], data["charted_value"]) \
            or chart[4] in order.get("r03", {}):
        return
    cases = ("high_alert",) if ctx.high_alert(order.get("medication"), order) else ()
    finding = ctx.open("R03", condition=f"{order['key']}|{chart[4]}", tracked=False, cases=cases,
                       subject=Subject(facility_id=order["facility_id"],
                                       patient_id=order.get("patient_id"),
                                       order_id=order["order_id"],
                                       pump_id=record.subject.get("pump_id"),
                                       channel=record.subject.get("channel")),
                       trigger=chart[4], opened_at=chart[1],
                       summary=f"charted {data['field']} differs from the pump at "
                               f"{clock.iso(chart[0])}",
                       evidence={"observed_at": clock.iso(chart[0]), "mismatches": [
                           {"field": data["field"], "charted": data["charted_value"],
                            "device": data["device_value"], "edit_event_id": ctx.event_id}]},
                       event_ids=[ctx.event_id])
    if finding is not None:
        order.setdefault("r03", {})[chart[4]] = finding["finding_id"]


def on_retracted(ctx: Context, record: StoredRecord) -> None:
    order = ctx.world.orders.get(record.stream)
    if order is not None:
        _corrects(ctx, record, order)


HANDLERS = {
    "infusion.started": (arm_charting,), "infusion.rate_changed": (arm_charting,),
    "documentation.validated": (on_charted,), "documentation.entered_manually": (on_charted,),
    "documentation.edited": (on_edited,), "documentation.retracted": (on_retracted,),
}
TIMERS = {"R20": fire_undocumented, "R21": fire_undocumented}
