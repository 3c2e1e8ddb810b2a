"""Who may receive what: R07 patient, R08 order, R27 duplicate therapy.

R07 compares the patient a channel serves with the order's patient at once (S1); a
channel delivering with no association is a condition of absence (S2 after the grace).
R08 (no active order at the start) waits a grace for an order arriving late, and resolves
when an active order is linked later (an order placed late relinks the patient's running
episodes here). R27 flags the same drug started on a second channel of the patient unless
two distinct active orders for that patient explain it — at the start, or when the drug
becomes known after it (a program that arrived late), on the line that started second.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.channels import (
    active_extras,
    explicit_link,
    linked_order,
    relink,
    same_medication,
    source_of,
    subject,
)
from projections.discrepancies.context import Context
from projections.discrepancies.orders import active_at, begins
from projections.discrepancies.rules import episode_condition
from projections.discrepancies.rules.rate import check_episode
from projections.discrepancies.world import patient_key, pump_key


def _episode(ctx: Context, channel_key: str, episode_id: str
             ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    entity = ctx.world.channels.get(channel_key)
    extra = entity["x"].get(episode_id) if entity else None
    return (entity, extra) if entity is not None and extra is not None else None


# -- R07 ---------------------------------------------------------------------------------
def check_patient(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    if extra["started"] is None or extra["ended"] is not None:
        return
    condition = episode_condition(entity, extra)
    order = linked_order(ctx, extra)
    if order is None or not explicit_link(extra) or not order.get("patient_id") \
            or not extra.get("patient"):
        return
    if order["patient_id"] != extra["patient"]:
        ctx.open("R07", condition=condition, subject=subject(ctx, entity, extra),
                 cases=("mismatch",),
                 summary=f"channel serves patient {extra['patient']}, order "
                         f"{order['order_id']} is for {order['patient_id']}",
                 evidence={"channel_patient": extra["patient"],
                           "order_patient": order["patient_id"], "order_id": order["order_id"]},
                 event_ids=[order.get("placed_event") or ctx.event_id])
    else:
        ctx.resolve("R07", condition)


def on_associated(ctx: Context, record: StoredRecord) -> None:
    change = ctx.change
    if change is None:
        return
    entity = change.entity
    patient = entity["fold"].get("patient_id")
    for extra in active_extras(entity):
        condition = episode_condition(entity, extra)
        ctx.answer(f"R07u|{condition}")
        ctx.resolve("R07", f"{condition}|unassociated")
        if extra["started"] is not None and extra.get("patient") and patient \
                and patient != extra["patient"]:
            ctx.open("R07", condition=f"{condition}|changed", subject=subject(ctx, entity, extra),
                     cases=("mismatch",),
                     summary=f"channel re-associated from {extra['patient']} to {patient} "
                             "during the infusion",
                     evidence={"previous_patient": extra["patient"], "new_patient": patient},
                     event_ids=[])
        elif patient == extra.get("patient"):
            ctx.resolve("R07", f"{condition}|changed")
        check_patient(ctx, entity, extra)


def fire_unassociated(ctx: Context, timer: dict[str, Any]) -> None:
    found = _episode(ctx, timer["channel"], timer["episode"])
    if found is None:
        return
    entity, extra = found
    if extra["ended"] is not None and timer.get("answer") is None:
        return
    finding = ctx.open("R07", condition=f"{timer['condition']}|unassociated",
                       subject=subject(ctx, entity, extra), cases=("unassociated",),
                       trigger=timer["trigger"], opened_at=timer["due"],
                       triggered_at=timer["armed_at"],
                       summary="channel delivering with no patient association",
                       evidence={"delivering_since": clock.iso(extra["started"])}, event_ids=[])
    ctx.settle(finding, timer)


# -- R08, R25, R27: when delivery begins -------------------------------------------------
def _authorised(ctx: Context, extra: dict[str, Any], at: int) -> bool:
    params = ctx.params("R08")
    med = extra.get("med") or {}
    if med.get("code") in params.standing_order_codes or any(
            same_medication(med, {"name": name}) for name in params.standing_order_names):
        return True
    if extra["how"] == "ambiguous":
        return True  # several active orders fit: not unauthorised, only unlinked
    return active_at(linked_order(ctx, extra), at)


def on_delivery_began(ctx: Context, record: StoredRecord) -> None:
    change = ctx.change
    if change is None:
        return
    entity = change.entity
    pump = pump_key(entity["facility_id"], entity["pump_id"])
    for episode_id in change.started:
        extra = entity["x"][episode_id]
        condition = episode_condition(entity, extra)
        if not _authorised(ctx, extra, extra["started"]):
            grace = clock.minutes(ctx.params("R08").grace_min)
            ctx.arm("R08", f"R08|{condition}", extra["started"] + grace, pump=pump,
                    channel=entity["key"], episode=episode_id, condition=condition)
        if not extra.get("patient"):
            grace = clock.minutes(ctx.params("R07").association_grace_min)
            ctx.arm("R07", f"R07u|{condition}", extra["started"] + grace, pump=pump,
                    channel=entity["key"], episode=episode_id, condition=condition)
        check_patient(ctx, entity, extra)
        _duplicate(ctx, entity, extra)


def fire_unordered(ctx: Context, timer: dict[str, Any]) -> None:
    found = _episode(ctx, timer["channel"], timer["episode"])
    if found is None:
        return
    entity, extra = found
    relink(ctx, entity, extra)
    if _authorised(ctx, extra, extra["started"]):
        return
    order = linked_order(ctx, extra)
    cases = ("high_alert",) if ctx.high_alert(extra.get("med"), order) else ()
    finding = ctx.open("R08", condition=timer["condition"], subject=subject(ctx, entity, extra),
                       cases=cases, trigger=timer["trigger"], opened_at=extra["started"],
                       summary=f"{(extra.get('med') or {}).get('name')} running with no active "
                               "order",
                       evidence={"link": extra["how"], "order_id": extra.get("order_id"),
                                 "order_status": order["status"] if order else None},
                       event_ids=[])
    if finding is not None and (extra["ended"] is not None or active_at(order, ctx.now)):
        at = extra["ended"] if extra["ended"] is not None or order is None \
            else (begins(order) or ctx.now)
        ctx.book.resolve(finding, at, ctx.event_id, ctx.position)


def _twins(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]
           ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Started episodes on the patient's other channels that run the same drug."""
    if not extra.get("patient") or not extra.get("med"):
        return
    patient = patient_key(entity["facility_id"], extra["patient"])
    for other_key in sorted(ctx.world.patient_channels.get(patient, ())):
        if other_key == entity["key"]:
            continue
        other = ctx.world.channels[other_key]
        for twin in active_extras(other):
            if twin["started"] is not None and twin.get("patient") == extra["patient"] \
                    and same_medication(twin.get("med"), extra["med"]):
                yield other, twin


def _duplicate(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    """R27 on ``extra``'s line if a line of the same drug was already running."""
    order = linked_order(ctx, extra)
    for other, twin in _twins(ctx, entity, extra):
        if twin["started"] > extra["started"]:
            continue  # that line is the duplicate of this one, not the other way round
        twin_order = linked_order(ctx, twin)
        if order is not None and twin_order is not None and order is not twin_order \
                and active_at(order, ctx.now) and active_at(twin_order, ctx.now) \
                and order.get("patient_id") == twin_order.get("patient_id") \
                == extra["patient"]:
            continue  # two orders for this patient, two lines: ordered that way
        cases = ("high_alert",) if ctx.high_alert(extra["med"], order) else ()
        # Began when this line started (the later of the two); known now — at the start,
        # or later when the program arrived late.
        ctx.open("R27", condition=episode_condition(entity, extra),
                 subject=subject(ctx, entity, extra), cases=cases,
                 opened_at=extra["started"], triggered_at=ctx.now,
                 summary=f"{extra['med'].get('name')} also running on {other['pump_id']} "
                         f"channel {other['channel']}",
                 evidence={"other_condition": episode_condition(other, twin),
                           "other_pump_id": other["pump_id"],
                           "other_channel": other["channel"], "other_episode_id": twin["id"]},
                 event_ids=[])
        return


def on_programmed(ctx: Context, record: StoredRecord) -> None:
    """R27 when a line's drug becomes known after its start: the program was delivered
    late (stored after the start), so the start could not compare drugs. Judged as at a
    start — with the lines that were running before it, and for the lines started after
    it — since the facts are known now."""
    change = ctx.change
    if change is None:
        return
    source = source_of(record)
    for episode in change.episodes:
        extra = change.entity["x"].get(episode["episode_id"])
        if episode["source"] != source or extra is None or extra["started"] is None \
                or extra["ended"] is not None:
            continue
        _duplicate(ctx, change.entity, extra)
        for other, twin in list(_twins(ctx, change.entity, extra)):
            if twin["started"] > extra["started"]:
                _duplicate(ctx, other, twin)


def on_order_placed(ctx: Context, record: StoredRecord) -> None:
    """Link the patient's running episodes that wait for this order."""
    order = ctx.world.orders.get(record.stream)
    if order is None or order.get("placed_at") is None:
        return
    patient = order.get("patient_key")
    for channel_key in sorted(ctx.world.patient_channels.get(patient, ())) if patient else ():
        entity = ctx.world.channels[channel_key]
        for extra in active_extras(entity):
            if relink(ctx, entity, extra) and _authorised(ctx, extra, ctx.now):
                ctx.resolve("R08", episode_condition(entity, extra))
                check_episode(ctx, entity, extra)
    for channel_key, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
        found = _episode(ctx, channel_key, episode_id)
        if found is not None:
            check_patient(ctx, *found)


def on_episode_end(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    condition = episode_condition(entity, extra)
    for rule in ("R07", "R08", "R27"):
        ctx.resolve(rule, condition)
    ctx.resolve("R07", f"{condition}|unassociated")
    ctx.resolve("R07", f"{condition}|changed")
    for key, finding in list(ctx.book.live.items()):
        if key.startswith("R27|") and finding["evidence"].get("other_condition") == condition:
            ctx.book.resolve(finding, ctx.now, ctx.event_id, ctx.position)


HANDLERS = {
    "pump.associated": (on_associated,),
    "infusion.started": (on_delivery_began,),
    "infusion.status_reported": (on_delivery_began,),
    "infusion.resumed": (on_delivery_began,),
    "infusion.rate_changed": (on_delivery_began,),
    "program.confirmed": (on_programmed,),
    "order.placed": (on_order_placed,),
    "order.modified": (on_order_placed,),
}
TIMERS = {"R07": fire_unassociated, "R08": fire_unordered}
ON_EPISODE_END = (on_episode_end,)
