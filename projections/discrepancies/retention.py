"""Forgetting what no rule can need any more, so the engine's model stays bounded.

Run once per hour of event time (the watermark crossing an hour), so a replay forgets
exactly what live processing forgot. An order that ended (or expired, or was only ever
seen through lifecycle events) more than two days ago and runs on no live episode is
dropped; a patient with no order and no channel left, located more than a week ago, too;
a pump keeps at most its latest alarms. Findings are not touched: they live in their table.
"""

from __future__ import annotations

from typing import Any

from projections.discrepancies import clock
from projections.discrepancies.world import World

ORDER_DAYS = 2
PATIENT_DAYS = 7
_KEEP_ALARMS = 50
_DAY = 24 * 60 * clock.MINUTE


def _order_done(order: dict[str, Any], horizon: int) -> bool:
    if order["status"] in ("discontinued", "completed"):
        return (order.get("ended_at") or horizon) < horizon
    if order.get("stop_at") is not None:
        return bool(order["stop_at"] < horizon)
    return order["status"] == "unknown" and order.get("seen", horizon) < horizon


def _runs(world: World, order_key: str) -> bool:
    for channel_key, episode_id in world.order_sources.get(order_key, ()):
        extra = world.channels.get(channel_key, {}).get("x", {}).get(episode_id)
        if extra is not None and extra["ended"] is None:
            return True
    return False


def prune(world: World, watermark: int) -> None:
    horizon = watermark - ORDER_DAYS * _DAY
    for key in sorted(k for k, order in world.orders.items()
                      if _order_done(order, horizon) and not _runs(world, k)):
        order = world.orders[key]
        if order.get("patient_key"):
            world.patient_orders[order["patient_key"]].discard(key)
        world.order_sources.pop(key, None)
        world.orders.drop(key)
    horizon = watermark - PATIENT_DAYS * _DAY
    for key in sorted(k for k, patient in world.patients.items()
                      if (patient.get("since") or horizon) < horizon
                      and not world.patient_orders.get(k) and not world.patient_channels.get(k)):
        world.patient_orders.pop(key, None)
        world.patient_channels.pop(key, None)
        world.patients.drop(key)
    for pump in world.pumps.values():
        alarms = pump["alarms"]
        if len(alarms) > _KEEP_ALARMS:
            # Closed ones first, oldest first: dict order is the order they were raised.
            for alarm_id in sorted(alarms, key=lambda a: not alarms[a]["closed"])[
                    :len(alarms) - _KEEP_ALARMS]:
                del alarms[alarm_id]
            world.pumps.mark(pump["key"])
