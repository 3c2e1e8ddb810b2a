"""Orders against what runs: R09 running after the order stopped, R25 ordered but not running.

Both are deadlines on the order's lifecycle. R09: when an order is discontinued, held,
completed or expires (``stop_at``), each started episode running it gets the grace to be
stopped or cleared; a release in time answers it. R25: an active continuous order must have
an infusion started by its expected start (``start_at``, else placement) + T; its end
answers it, and a later start resolves the finding.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.channels import linked_order, subject
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.orders import active_at, begins
from projections.discrepancies.rules import episode_condition, remember_timer
from projections.discrepancies.world import patient_key, pump_key


def _episode(ctx: Context, channel_key: str, episode_id: str
             ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    entity = ctx.world.channels.get(channel_key)
    extra = entity["x"].get(episode_id) if entity else None
    return (entity, extra) if entity is not None and extra is not None else None


def on_delivery_began(ctx: Context, record: StoredRecord) -> None:
    """A start answers its order's R25 deadline (or resolves its finding)."""
    change = ctx.change
    if change is None:
        return
    for episode_id in change.started:
        extra = change.entity["x"][episode_id]
        order = linked_order(ctx, extra)
        if order is None:
            continue
        first = order.get("first_start")
        if first is None or extra["started"] < first:
            order["first_start"] = extra["started"]
            ctx.world.orders.mark(order["key"])
        ctx.answer(f"R25|{order['key']}", extra["started"])
        if order.get("r25"):
            ctx.book.resolve_id(order.pop("r25"), ctx.now, ctx.event_id, ctx.position)


def on_order_placed(ctx: Context, record: StoredRecord) -> None:
    """Arm R25 and the expiry of R09."""
    order = ctx.world.orders.get(record.stream)
    if order is None or order.get("placed_at") is None:
        return
    if order.get("stop_at") is not None:
        grace = clock.minutes(ctx.params("R09").grace_min)
        ctx.arm("R09", f"R09x|{order['key']}|{order['stop_at']}", order["stop_at"] + grace,
                order=order["key"], expiry=True, stop_at=order["stop_at"])
    begin = begins(order)
    params = ctx.params("R25")
    if record.type == "order.placed" and begin is not None and order["status"] == "active" \
            and (order.get("continuous", True) or not params.continuous_only) \
            and order.get("first_start") is None:
        ctx.arm("R25", f"R25|{order['key']}", begin + clock.minutes(params.window_min),
                order=order["key"])


# -- R09 ---------------------------------------------------------------------------------
def on_order_ended(ctx: Context, record: StoredRecord) -> None:
    order = ctx.world.orders.get(record.stream)
    if order is None:
        return
    ended = order.get("ended_at") or ctx.now
    ctx.answer(f"R25|{order['key']}", ended)
    if order.get("r25"):
        ctx.book.resolve_id(order.pop("r25"), ended, ctx.event_id, ctx.position)
        ctx.world.orders.mark(order["key"])
    grace = clock.minutes(ctx.params("R09").grace_min)
    for channel_key, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
        found = _episode(ctx, channel_key, episode_id)
        if found is None:
            continue
        entity, extra = found
        if extra["started"] is None or extra["ended"] is not None:
            continue
        condition = episode_condition(entity, extra)
        timer_id = f"R09|{condition}|{ctx.event_id}"
        if ctx.arm("R09", timer_id, ended + grace,
                   pump=pump_key(entity["facility_id"], entity["pump_id"]),
                   channel=channel_key, episode=episode_id, condition=condition,
                   order=order["key"]) is not None:
            remember_timer(ctx, extra, "R09", timer_id)
            ctx.world.channels.mark(channel_key)


def on_order_released(ctx: Context, record: StoredRecord) -> None:
    order = ctx.world.orders.get(record.stream)
    if order is None:
        return
    for channel_key, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
        found = _episode(ctx, channel_key, episode_id)
        if found is None:
            continue
        entity, extra = found
        for rule, timer_id in extra["timers"]:
            if rule == "R09":
                ctx.answer(timer_id)
        ctx.resolve("R09", episode_condition(entity, extra))


def fire_running_after_stop(ctx: Context, timer: dict[str, Any]) -> None:
    order = ctx.world.orders.get(timer["order"])
    if order is None:
        return
    if timer.get("expiry"):
        if order["status"] != "active" or order.get("stop_at") != timer["stop_at"]:
            return  # ended otherwise: that event armed its own deadlines
        for channel_key, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
            found = _episode(ctx, channel_key, episode_id)
            if found is not None and found[1]["started"] is not None \
                    and found[1]["ended"] is None:
                _r09(ctx, found[0], found[1], order, timer)
        return
    found = _episode(ctx, timer["channel"], timer["episode"])
    if found is None or (found[1]["ended"] is not None and timer.get("answer") is None):
        return
    if active_at(order, timer["due"]):
        return  # released in the meantime
    _r09(ctx, found[0], found[1], order, timer)


def _r09(ctx: Context, entity: dict[str, Any], extra: dict[str, Any], order: dict[str, Any],
         timer: dict[str, Any]) -> None:
    cases = ("high_alert",) if ctx.high_alert(extra.get("med"), order) else ()
    why = "expired" if timer.get("expiry") else order["status"]
    finding = ctx.open("R09", condition=episode_condition(entity, extra),
                       subject=subject(ctx, entity, extra), cases=cases,
                       trigger=timer["trigger"], opened_at=timer["due"],
                       triggered_at=timer["armed_at"],
                       summary=f"still running {clock.iso(timer['due'])} after order "
                               f"{order['order_id']} {why} (+ grace)",
                       evidence={"order_status": why, "order_ended_at": clock.iso(
                           order.get("ended_at") or order.get("stop_at")),
                           "channel_status": extra.get("status")},
                       event_ids=[order.get("end_event") or timer["trigger"]])
    ctx.settle(finding, timer)


def fire_not_running(ctx: Context, timer: dict[str, Any]) -> None:
    order = ctx.world.orders.get(timer["order"])
    if order is None or order["status"] == "unknown":
        return
    if order.get("ended_at") is not None and order["ended_at"] <= timer["due"]:
        return
    first = order.get("first_start")
    if first is not None and first <= timer["due"]:
        return
    fac = order["facility_id"]
    patient = ctx.world.patients.get(patient_key(fac, order["patient_id"])) \
        if order.get("patient_id") else None
    who = Subject(facility_id=fac, patient_id=order.get("patient_id"),
                  order_id=order["order_id"], unit=(patient or {}).get("unit"),
                  care_area=(patient or {}).get("care_area"))
    finding = ctx.open("R25", condition=order["key"], subject=who, tracked=False,
                       trigger=timer["trigger"], opened_at=timer["due"],
                       triggered_at=timer["armed_at"],
                       summary=f"{(order.get('medication') or {}).get('name')} ordered, not "
                               f"running {clock.iso(timer['due'])}",
                       evidence={"expected_start": clock.iso(begins(order)),
                                 "first_start": clock.iso(first)}, event_ids=[])
    if finding is None:
        return
    if first is not None:
        ctx.book.resolve(finding, first, ctx.event_id, ctx.position)
    else:
        order["r25"] = finding["finding_id"]
        ctx.world.orders.mark(order["key"])


def on_episode_end(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    ctx.resolve("R09", episode_condition(entity, extra))
    for rule, timer_id in extra["timers"]:
        if rule == "R09":
            ctx.answer(timer_id)


_STARTS = ("infusion.started", "infusion.status_reported", "infusion.resumed",
           "infusion.rate_changed")
HANDLERS = {
    **{kind: (on_delivery_began,) for kind in _STARTS},
    "order.placed": (on_order_placed,),
    "order.modified": (on_order_placed,),
    "order.held": (on_order_ended,),
    "order.discontinued": (on_order_ended,),
    "order.completed": (on_order_ended,),
    "order.released": (on_order_released,),
}
TIMERS = {"R09": fire_running_after_stop, "R25": fire_not_running}
ON_EPISODE_END = (on_episode_end,)
