"""Responses in time: R22 unanswered alarm, R23 stop after alarm, R24 paused or KVO too long.

All three are deadlines. R22: a high (medium) priority alarm needs a silence,
acknowledgement, clearing or inactivation within T; an occlusion or air-in-line on a
high-alert infusion still unanswered at ``escalate_factor`` × T escalates to S1. R23: a
delivery stopped by an alarm must be resumed or stopped within T (shorter for vasoactive
drugs). R24: a channel paused by a clinician or in KVO with an active order must move on
within T. An answer after the deadline still opens the finding, resolved at the answer.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.channels import active_extras, linked_order, source_of, subject
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.orders import active_at
from projections.discrepancies.rules import episode_condition, remember_timer
from projections.discrepancies.world import channel_key, facility, patient_key, pump_key

_KEEP_CLOSED = 20
_ANSWERS = frozenset({"alarm.silenced", "alarm.acknowledged", "alarm.cleared"})


def _alarm(ctx: Context, record: StoredRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    subject_ = record.subject
    fac = facility(subject_)
    pump = ctx.world.pump_entity(pump_key(fac, subject_["pump_id"]), fac, subject_["pump_id"])
    alarm = pump["alarms"].setdefault(subject_["alarm_id"], {
        "alarm_id": subject_["alarm_id"], "raised_at": None, "priority": None, "code": None,
        "answered_at": None, "answer_event": None, "closed": False,
        "subject": {k: subject_.get(k) for k in ("channel", "patient_id", "order_id")},
    })
    ctx.world.pumps.mark(pump["key"])
    return pump, alarm


def _window(ctx: Context, priority: str | None) -> int | None:
    params = ctx.params("R22")
    minutes = {"high": params.high_min, "medium": params.medium_min}.get(priority or "")
    return None if minutes is None else clock.minutes(minutes)


def on_alarm(ctx: Context, record: StoredRecord) -> None:
    pump, alarm = _alarm(ctx, record)
    data = record.data
    timer_id = f"R22|{pump['key']}|{alarm['alarm_id']}"
    if record.type == "alarm.raised":
        alarm.update({"raised_at": ctx.now, "priority": data["priority"], "code": data["code"],
                      "raised_event": ctx.event_id})
        _arm(ctx, pump, alarm, timer_id, ctx.now)
    elif record.type == "alarm.updated":
        if data.get("state") == "inactive":
            _answered(ctx, pump, alarm, timer_id)
        elif data.get("priority") and data["priority"] != alarm["priority"]:
            alarm["priority"] = data["priority"]
            _arm(ctx, pump, alarm, f"{timer_id}|{ctx.event_id}", ctx.now)
    elif record.type in _ANSWERS:
        _answered(ctx, pump, alarm, timer_id)
        if record.type == "alarm.cleared":
            alarm["closed"] = True
            closed = [k for k, a in pump["alarms"].items() if a["closed"]]
            for stale in closed[:-_KEEP_CLOSED]:
                del pump["alarms"][stale]


def _arm(ctx: Context, pump: dict[str, Any], alarm: dict[str, Any], timer_id: str,
         start: int) -> None:
    window = _window(ctx, alarm["priority"])
    if window is None or alarm["raised_at"] is None:
        return
    timer = ctx.arm("R22", timer_id, start + window, pump=pump["key"], alarm=alarm["alarm_id"])
    if timer is not None and alarm["answered_at"] is not None:
        # An answer that arrived before the alarm itself (out of order).
        ctx.answer(timer_id, alarm["answered_at"], alarm["answer_event"])


def _answered(ctx: Context, pump: dict[str, Any], alarm: dict[str, Any], timer_id: str) -> None:
    if alarm["answered_at"] is None or ctx.now < alarm["answered_at"]:
        alarm["answered_at"], alarm["answer_event"] = ctx.now, ctx.event_id
    ctx.answer(timer_id)
    condition = f"{pump['key']}|{alarm['alarm_id']}"
    ctx.resolve("R22", condition)


def _alarm_subject(ctx: Context, pump: dict[str, Any], alarm: dict[str, Any]
                   ) -> tuple[Subject, dict[str, Any] | None]:
    """The alarm's subject, completed from the channel's running episode."""
    fac = pump["facility_id"]
    given = alarm["subject"]
    entity = ctx.world.channels.get(channel_key(fac, pump["pump_id"], given["channel"])) \
        if given.get("channel") else None
    running = [x for x in active_extras(entity) if x["started"] is not None] if entity else []
    # The episode the alarm names by its order, when it does (a piggyback, say).
    running.sort(key=lambda x: x.get("order_id") != given.get("order_id"))
    if entity is not None and running:
        who = subject(ctx, entity, running[0])
        who.alarm_id = alarm["alarm_id"]
        return who, running[0]
    patient = ctx.world.patients.get(patient_key(fac, given["patient_id"])) \
        if given.get("patient_id") else None
    return Subject(facility_id=fac, patient_id=given.get("patient_id"),
                   order_id=given.get("order_id"), pump_id=pump["pump_id"],
                   channel=given.get("channel"), alarm_id=alarm["alarm_id"],
                   unit=(patient or {}).get("unit")), None


def fire_unanswered(ctx: Context, timer: dict[str, Any]) -> None:
    pump = ctx.world.pumps.get(timer["pump"])
    alarm = (pump or {}).get("alarms", {}).get(timer["alarm"])
    if pump is None or alarm is None:
        return
    params = ctx.params("R22")
    who, extra = _alarm_subject(ctx, pump, alarm)
    if timer.get("escalation"):
        finding = ctx.live("R22", f"{pump['key']}|{alarm['alarm_id']}")
        if finding is not None and timer.get("answer") is None:
            ctx.book.escalate(finding, ctx.ruleset.severity("R22", "escalated", who.care_area),
                              ctx.position)
            finding["evidence"]["escalated_at"] = clock.iso(timer["due"])
        return
    finding = ctx.open("R22", condition=f"{pump['key']}|{alarm['alarm_id']}", subject=who,
                       trigger=timer["trigger"], opened_at=timer["due"],
                       triggered_at=timer["armed_at"],
                       summary=f"{alarm['priority']} priority {alarm['code']} not answered "
                               f"within {(timer['due'] - timer['armed_at']) // clock.SECOND} s",
                       evidence={"code": alarm["code"], "priority": alarm["priority"],
                                 "raised_at": clock.iso(alarm["raised_at"]),
                                 "deadline": clock.iso(timer["due"])}, event_ids=[])
    ctx.settle(finding, timer)
    if finding is None or finding["condition_status"] != "open" or extra is None:
        return
    order = linked_order(ctx, extra)
    if alarm["code"] in params.escalate_codes and ctx.high_alert(extra.get("med"), order):
        window = timer["due"] - timer["armed_at"]
        ctx.arm("R22", f"{timer['id']}|escalate", timer["armed_at"] + int(
            window * params.escalate_factor), pump=pump["key"], alarm=alarm["alarm_id"],
            escalation=True)


# -- R23 / R24 ---------------------------------------------------------------------------
def on_paused(ctx: Context, record: StoredRecord) -> None:
    change = ctx.change
    if change is None or not change.episodes:
        return
    entity = change.entity
    extra = entity["x"][change.episodes[-1]["episode_id"]]
    reason = record.data.get("reason") or "unknown"
    condition = episode_condition(entity, extra)
    pump = pump_key(entity["facility_id"], entity["pump_id"])
    if reason == "alarm":
        vasoactive = ctx.ruleset.vasoactive.matches(extra.get("med"))
        params = ctx.params("R23", subject(ctx, entity, extra).care_area)
        window = params.vasoactive_min if vasoactive else params.other_min
        rule, due = "R23", ctx.now + clock.minutes(window)
    elif reason not in ctx.params("R24").exclude_pause_reasons:
        if not active_at(linked_order(ctx, extra), ctx.now):
            return
        rule, due = "R24", ctx.now + clock.minutes(ctx.params("R24").window_min)
    else:
        return
    _arm_state(ctx, rule, entity, extra, condition, pump, due, reason)


def on_kvo(ctx: Context, record: StoredRecord) -> None:
    change = ctx.change
    if change is None or not change.episodes:
        return
    entity = change.entity
    extra = entity["x"][change.episodes[-1]["episode_id"]]
    if not active_at(linked_order(ctx, extra), ctx.now):
        return
    due = ctx.now + clock.minutes(ctx.params("R24").window_min)
    _arm_state(ctx, "R24", entity, extra, episode_condition(entity, extra),
               pump_key(entity["facility_id"], entity["pump_id"]), due, "kvo")


def _arm_state(ctx: Context, rule: str, entity: dict[str, Any], extra: dict[str, Any],
               condition: str, pump: str, due: int, reason: str) -> None:
    timer_id = f"{rule}|{condition}|{ctx.event_id}"
    if ctx.arm(rule, timer_id, due, pump=pump, channel=entity["key"], episode=extra["id"],
               condition=condition, reason=reason) is not None:
        remember_timer(ctx, extra, rule, timer_id)
        ctx.world.channels.mark(entity["key"])


def on_moved_on(ctx: Context, record: StoredRecord) -> None:
    """The episode left its paused or KVO state: answers R23 and R24."""
    change = ctx.change
    if change is None or change.skipped:
        return
    source = source_of(record)
    for episode in change.episodes:
        extra = change.entity["x"].get(episode["episode_id"])
        if extra is None or (episode["source"] != source and record.type != "program.cleared"):
            continue
        if record.type == "infusion.status_reported" and extra.get("status") != "infusing":
            continue
        answer_state(ctx, change.entity, extra)


def answer_state(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    for rule, timer_id in extra["timers"]:
        if rule in ("R23", "R24"):
            ctx.answer(timer_id)
    condition = episode_condition(entity, extra)
    ctx.resolve("R23", condition)
    ctx.resolve("R24", condition)


def on_order_ended(ctx: Context, record: StoredRecord) -> None:
    """R24 needs an active order: its end answers the deadline."""
    order = ctx.world.orders.get(record.stream)
    if order is None:
        return
    for channel_key_, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
        entity = ctx.world.channels.get(channel_key_)
        extra = entity["x"].get(episode_id) if entity else None
        if entity is None or extra is None:
            continue
        for rule, timer_id in extra["timers"]:
            if rule == "R24":
                ctx.answer(timer_id, order.get("ended_at") or ctx.now)
        ctx.resolve("R24", episode_condition(entity, extra))


def fire_state(ctx: Context, timer: dict[str, Any]) -> None:
    entity = ctx.world.channels.get(timer["channel"])
    extra = entity["x"].get(timer["episode"]) if entity else None
    if entity is None or extra is None:
        return
    rule = timer["rule"]
    what = {"alarm": "stopped by an alarm", "kvo": "in KVO"}.get(timer["reason"], "paused")
    cases = ("vasoactive",) if rule == "R23" and ctx.ruleset.vasoactive.matches(
        extra.get("med")) else ()
    finding = ctx.open(rule, condition=timer["condition"], subject=subject(ctx, entity, extra),
                       cases=cases, trigger=timer["trigger"], opened_at=timer["due"],
                       triggered_at=timer["armed_at"],
                       summary=f"{(extra.get('med') or {}).get('name')} {what} since "
                               f"{clock.iso(timer['armed_at'])}",
                       evidence={"since": clock.iso(timer["armed_at"]), "reason": timer["reason"],
                                 "deadline": clock.iso(timer["due"])}, event_ids=[])
    ctx.settle(finding, timer)


def on_episode_end(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    answer_state(ctx, entity, extra)


_MOVED_ON = ("infusion.resumed", "infusion.started", "infusion.rate_changed", "infusion.stopped",
             "program.cleared", "infusion.status_reported")
HANDLERS = {
    **{kind: (on_alarm,) for kind in ("alarm.raised", "alarm.updated", *_ANSWERS)},
    "infusion.paused": (on_paused,),
    "infusion.kvo_started": (on_kvo,),
    **{kind: (on_moved_on,) for kind in _MOVED_ON},
    "order.discontinued": (on_order_ended,), "order.held": (on_order_ended,),
    "order.completed": (on_order_ended,),
}
TIMERS = {"R22": fire_unanswered, "R23": fire_state, "R24": fire_state}
ON_EPISODE_END = (on_episode_end,)
