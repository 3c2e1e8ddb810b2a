"""R01 (running rate vs the order) and R02 (dose rate outside the titration range).

Both are conditions of a running episode against its active order, evaluated as soon as
either side is known: when delivery starts, the rate or dose rate changes (discrete event
or telemetry), the order is modified, released or linked late. They resolve when the rate
is corrected, the order changes to match, the order stops being active, or the episode
ends. KVO runs at a keep-vein-open rate on purpose and is not compared.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import quantities as q
from projections.discrepancies.channels import linked_order, subject
from projections.discrepancies.context import Context
from projections.discrepancies.orders import active_at
from projections.discrepancies.rules import episode_condition

_COMPARED_STATUS = frozenset({"infusing", "paused", "alarming"})


def rate_outside(ctx: Context, order: dict[str, Any], rate: Decimal,
                 care_area: str | None) -> dict[str, Any] | None:
    """Why a flow (mL/h) breaks R01 for ``order`` (evidence), or None within tolerance."""
    params = ctx.params("R01", care_area)
    pct, floor = params.rate_tol_pct, params.rate_tol_floor_ml_h
    span = q.titration_flows(order)
    if span is not None:
        low, high = span
        low_tol, high_tol = q.tolerance(low, pct, floor), q.tolerance(high, pct, floor)
        if low - low_tol <= rate <= high + high_tol:
            return None
        bound, tol = (low, low_tol) if rate < low else (high, high_tol)
        return {"mode": "titration_range", "ordered_low_ml_h": q.fmt(low),
                "ordered_high_ml_h": q.fmt(high), "expected_ml_h": q.fmt(bound),
                "tolerance_ml_h": q.fmt(tol), "_expected": bound}
    expected, basis = q.ordered_flow(order)
    if expected is None or q.within(rate, expected, pct, floor):
        return None
    return {"mode": "ordered_" + basis, "expected_ml_h": q.fmt(expected),
            "tolerance_ml_h": q.fmt(q.tolerance(expected, pct, floor)), "_expected": expected}


def check_episode(ctx: Context, entity: dict[str, Any], extra: dict[str, Any],
                  trigger: str | None = None) -> None:
    """Evaluate R01 and R02 for one episode at the current event."""
    if extra["started"] is None or extra["ended"] is not None:
        return
    if extra.get("status") not in _COMPARED_STATUS:
        return
    condition = episode_condition(entity, extra)
    order = linked_order(ctx, extra)
    if order is None or not active_at(order, ctx.now):
        ctx.resolve("R01", condition)
        ctx.resolve("R02", condition)
        return
    who = subject(ctx, entity, extra)
    # The condition began when both facts held: the order's version and the pump's rate.
    since = max(ctx.now if not extra["segments"] else extra["segments"][-1][0],
                order.get("version_at") or 0, order.get("start_at") or 0)
    _r01(ctx, condition, who, extra, order, trigger, since)
    _r02(ctx, condition, who, extra, order, trigger, since)


def _r01(ctx: Context, condition: str, who: Any, extra: dict[str, Any],
         order: dict[str, Any], trigger: str | None, since: int) -> None:
    rate = q.flow(extra.get("rate"))
    if rate is None:
        return
    why = rate_outside(ctx, order, rate, who.care_area)
    if why is None:
        ctx.resolve("R01", condition)
        return
    expected: Decimal = why.pop("_expected")
    params = ctx.params("R01", who.care_area)
    ratio = rate / expected if expected > 0 else None
    cases = []
    if ratio is None or ratio >= params.s1_ratio_high or ratio <= params.s1_ratio_low:
        cases.append("ratio")
    if ctx.high_alert(extra.get("med"), order):
        cases.append("high_alert")
    evidence = {
        "running_ml_h": q.fmt(rate), **why, "ratio": q.fmt(ratio, 2),
        "running_rate": extra.get("rate"), "ordered_dose": order.get("dose"),
        "ordered_rate": order.get("rate"), "titration": order.get("titration"),
        "concentration": order.get("concentration"), "dosing_weight": order.get("dosing_weight"),
        "order_id": order["order_id"], "link": extra["how"],
    }
    ordered = (f"ordered {why['ordered_low_ml_h']}-{why['ordered_high_ml_h']} mL/h"
               if why["mode"] == "titration_range" else f"ordered {why['expected_ml_h']} mL/h")
    ctx.open("R01", condition=condition, subject=who, cases=tuple(cases), trigger=trigger,
             opened_at=since,
             summary=f"running {q.fmt(rate)} mL/h vs {ordered} (±{why['tolerance_ml_h']})",
             evidence=evidence, event_ids=[order.get("placed_event") or ctx.event_id])


def dose_outside(order: dict[str, Any], dose: dict[str, Any] | None,
                 same_unit_only: bool) -> dict[str, Any] | None:
    """Why a dose rate breaks R02 (outside the titration range), or None."""
    titration = order.get("titration")
    if not titration or not dose:
        return None
    unit = q.unit(titration["min"])
    if same_unit_only and q.unit(dose) != unit:
        return None
    value = q.dose_in(dose, unit or "")
    low, high = q.to_unit(titration["min"], unit or ""), q.to_unit(titration["max"], unit or "")
    if value is None or low is None or high is None or low <= value <= high:
        return None
    return {"dose_rate": dose, "titration_min": titration["min"],
            "titration_max": titration["max"], "compared_in": unit}


def _r02(ctx: Context, condition: str, who: Any, extra: dict[str, Any],
         order: dict[str, Any], trigger: str | None, since: int) -> None:
    params = ctx.params("R02", who.care_area)
    dose = extra.get("dose_rate") or (extra.get("program") or {}).get("dose")
    why = dose_outside(order, dose, params.compare_same_unit_only)
    if why is None or dose is None:
        if dose is not None:
            ctx.resolve("R02", condition)
        return
    cases = ("high_alert",) if ctx.high_alert(extra.get("med"), order) else ()
    ctx.open("R02", condition=condition, subject=who, cases=cases, trigger=trigger,
             opened_at=since,
             summary=f"dose rate {dose['value']} {dose['unit']} outside titration "
                     f"{why['titration_min']['value']}-{why['titration_max']['value']} "
                     f"{why['compared_in']}",
             evidence={**why, "order_id": order["order_id"]},
             event_ids=[order.get("placed_event") or ctx.event_id])


def on_delivery(ctx: Context, record: StoredRecord) -> None:
    change = ctx.change
    if change is None or change.skipped:
        return
    for episode in change.episodes:
        extra = change.entity["x"].get(episode["episode_id"])
        if extra is not None:
            check_episode(ctx, change.entity, extra)


def check_order(ctx: Context, order: dict[str, Any]) -> None:
    """Re-evaluate every episode running ``order`` (it was modified, ended or released)."""
    for channel_key, episode_id in sorted(ctx.world.order_sources.get(order["key"], ())):
        entity = ctx.world.channels.get(channel_key)
        extra = entity["x"].get(episode_id) if entity else None
        if entity is not None and extra is not None:
            check_episode(ctx, entity, extra)


def on_order(ctx: Context, record: StoredRecord) -> None:
    order = ctx.world.orders.get(record.stream)
    if order is not None:
        check_order(ctx, order)


def on_episode_end(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> None:
    condition = episode_condition(entity, extra)
    ctx.resolve("R01", condition)
    ctx.resolve("R02", condition)


_DELIVERY = ("infusion.started", "infusion.rate_changed", "infusion.resumed",
             "infusion.status_reported", "pump.associated")
HANDLERS = {
    **{kind: (on_delivery,) for kind in _DELIVERY},
    **{kind: (on_order,) for kind in ("order.placed", "order.modified", "order.held",
                                      "order.released", "order.discontinued",
                                      "order.completed")},
}
TIMERS: dict[str, Any] = {}
ON_EPISODE_END = (on_episode_end,)
