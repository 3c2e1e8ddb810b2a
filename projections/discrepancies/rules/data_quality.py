"""R30 (clock skew, communication gaps, late data) and R31 (pump-reported corrections).

R30 runs on every event *before* the event clock moves, because it decides whether the
event may move it: lateness is ``received_at − occurred_at`` and is judged only when
``received_at`` is present. A pump whose events are late beyond T (or ahead of their
arrival) without a known communication gap gets a clock-skew finding; while it is open,
the pump's events do not move the watermark and its timing deadlines are suppressed
(counted on the finding). ``pump.clock_changed`` ends the episode and is recorded itself.
A communication gap (``lost`` .. ``restored``) is one finding; late events it explains
are counted on it, and deadlines due during the gap wait for its buffered data.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.world import facility, pump_key

_KEEP_GAPS = 5


def _pump_subject(pump: dict[str, Any]) -> Subject:
    return Subject(facility_id=pump["facility_id"], pump_id=pump["pump_id"])


def in_gap(pump: dict[str, Any], at: int) -> list[Any] | None:
    for gap in reversed(pump["gaps"]):
        if gap[0] <= at and (gap[1] is None or at <= gap[1]):
            return gap
    return None


def observe(ctx: Context, record: StoredRecord) -> bool:
    """Judge the event's clocks; True when it may move the event clock."""
    subject = record.event["subject"]
    pump = None
    if "pump_id" in subject:
        fac = facility(subject)
        pump = ctx.world.pump_entity(pump_key(fac, subject["pump_id"]), fac, subject["pump_id"])
        if record.type == "pump.communication_changed":
            _communication(ctx, pump, record.data["status"])
        elif record.type == "pump.clock_changed":
            _clock_changed(ctx, pump, record)
    if record.event.get("corrects_event_id") and not record.type.startswith("documentation."):
        _correction(ctx, record)
    if ctx.received is None or ctx.lateness is None:
        return pump is None or pump["skew"] is None
    late = ctx.lateness
    lag = ctx.received - ctx.now
    if -late <= lag <= late:
        if pump is not None and pump["skew"] is not None:
            _on_time(ctx, pump, ctx.params("R30").clear_after_on_time)
        return pump is None or pump["skew"] is None
    params = ctx.params("R30")
    if pump is None:
        _late_source(ctx, record, lag)
        return lag > 0
    gap = in_gap(pump, ctx.now)
    if gap is not None and lag > 0:
        finding = ctx.live("R30", f"{pump['key']}|gap")
        if finding is not None:
            finding["evidence"]["late_events"] = finding["evidence"].get("late_events", 0) + 1
            ctx.book.touch(finding, ctx.position)
        return True
    changed = pump.get("clock_changed")
    if changed is not None and lag > 0 and ctx.received - changed[0] <= late:
        # Stamped by the old clock and still in flight when the clock was corrected.
        return False
    skew = pump["skew"]
    if skew is None:
        pump["skew"] = {"since": ctx.now, "events": 1, "on_time": 0, "suppressed": 0}
        ahead = lag < 0
        ctx.open("R30", condition=f"{pump['key']}|skew", subject=_pump_subject(pump),
                 summary=f"pump clock {'ahead of' if ahead else 'behind'} arrival by "
                         f"{abs(lag) // clock.SECOND} s (received {clock.iso(ctx.received)}, "
                         f"occurred {clock.iso(ctx.now)})",
                 evidence={"kind": "clock_ahead" if ahead else "clock_skew",
                           "lag_seconds": lag // clock.SECOND, "threshold_min": str(
                               params.late_min)}, event_ids=[])
    else:
        skew["events"] += 1
        skew["on_time"] = 0
    ctx.world.pumps.mark(pump["key"])
    return False


def _on_time(ctx: Context, pump: dict[str, Any], needed: int) -> None:
    skew = pump["skew"]
    skew["on_time"] += 1
    ctx.world.pumps.mark(pump["key"])
    if skew["on_time"] >= needed:
        _end_skew(ctx, pump)


def _end_skew(ctx: Context, pump: dict[str, Any]) -> None:
    finding = ctx.live("R30", f"{pump['key']}|skew")
    if finding is not None and pump["skew"] is not None:
        finding["evidence"].update({"late_events": pump["skew"]["events"],
                                    "suppressed_deadlines": pump["skew"]["suppressed"]})
    ctx.resolve("R30", f"{pump['key']}|skew")
    pump["skew"] = None
    ctx.world.pumps.mark(pump["key"])


def _clock_changed(ctx: Context, pump: dict[str, Any], record: StoredRecord) -> None:
    data = record.data
    previous, new = clock.parse(data["previous_time"]), clock.parse(data["new_time"])
    ctx.open("R30", condition=f"{pump['key']}|clock|{ctx.event_id}",
             subject=_pump_subject(pump), tracked=False,
             summary=f"pump clock changed by {(new - previous) // clock.SECOND} s",
             evidence={"kind": "device_time_changed", "previous_time": data["previous_time"],
                       "new_time": data["new_time"]}, event_ids=[])
    if pump["skew"] is not None:
        _end_skew(ctx, pump)
    pump["clock_changed"] = [ctx.received if ctx.received is not None else ctx.now,
                             ctx.event_id]
    ctx.world.pumps.mark(pump["key"])


def _communication(ctx: Context, pump: dict[str, Any], status: str) -> None:
    gaps = pump["gaps"]
    open_gap = gaps[-1] if gaps and gaps[-1][1] is None else None
    if status == "lost" and open_gap is None:
        gaps.append([ctx.now, None])
        del gaps[:-_KEEP_GAPS]
        ctx.open("R30", condition=f"{pump['key']}|gap", subject=_pump_subject(pump),
                 summary="pump communication lost: its events will arrive late",
                 evidence={"kind": "communication_gap", "lost_at": clock.iso(ctx.now)},
                 event_ids=[])
    elif status == "restored" and open_gap is not None:
        open_gap[1] = ctx.now
        # The gap's finding stays open while its buffered events arrive (they are counted
        # on it), then resolves at the restoration.
        if ctx.arm("R30", f"R30gap|{pump['key']}|{ctx.event_id}", ctx.now,
                   pump_entity=pump["key"], restored_event=ctx.event_id) is None:
            ctx.resolve("R30", f"{pump['key']}|gap")
        # Deadlines held during the gap fire once the buffered data had time to arrive.
        for timer_id in pump["deferred"]:
            timer = ctx.timers.get(timer_id)
            if timer is not None:
                ctx.timers.reschedule(timer, max(timer["fire"], ctx.now + ctx.late))
        pump["deferred"] = []
    ctx.world.pumps.mark(pump["key"])


def _late_source(ctx: Context, record: StoredRecord, lag: int) -> None:
    """Late data from a source without a pump (EHR, BCMA): one episode per source system."""
    system = (record.event.get("source") or {}).get("system", "unknown")
    fac = facility(record.subject)
    ctx.open("R30", condition=f"source:{fac}:{system}",
             subject=Subject(facility_id=fac, patient_id=record.subject.get("patient_id"),
                             order_id=record.subject.get("order_id")),
             summary=f"{system} data {abs(lag) // clock.SECOND} s "
                     f"{'late' if lag > 0 else 'ahead'}",
             evidence={"kind": "late_data", "source_system": system,
                       "lag_seconds": lag // clock.SECOND}, event_ids=[])


def suppress(ctx: Context, timer: dict[str, Any]) -> bool:
    """Whether a firing deadline must wait (gap) or be dropped (skew) for its pump."""
    pump = ctx.world.pumps.get(timer.get("pump") or "")
    if pump is None:
        return bool(timer.get("skewed"))
    if pump["skew"] is not None or timer.get("skewed"):
        if pump["skew"] is not None:
            pump["skew"]["suppressed"] += 1
        finding = ctx.live("R30", f"{pump['key']}|skew")
        if finding is not None:
            finding["evidence"]["suppressed_deadlines"] = \
                finding["evidence"].get("suppressed_deadlines", 0) + 1
            ctx.book.touch(finding, ctx.position)
        ctx.world.pumps.mark(pump["key"])
        return True
    if pump["gaps"] and pump["gaps"][-1][1] is None:
        ctx.timers.table[timer["id"]] = timer
        ctx.timers.table.mark(timer["id"])
        pump["deferred"].append(timer["id"])
        ctx.world.pumps.mark(pump["key"])
        return True
    return False


def _correction(ctx: Context, record: StoredRecord) -> None:
    subject = record.subject
    ctx.open("R31", condition=f"correction|{ctx.event_id}",
             subject=Subject(facility_id=facility(subject), patient_id=subject.get("patient_id"),
                             order_id=subject.get("order_id"), pump_id=subject.get("pump_id"),
                             channel=subject.get("channel")), tracked=False,
             summary=f"{record.type} corrects event {record.event['corrects_event_id']}",
             evidence={"corrects_event_id": record.event["corrects_event_id"]},
             event_ids=[record.event["corrects_event_id"]])


def fire_gap_closed(ctx: Context, timer: dict[str, Any]) -> None:
    pump = ctx.world.pumps.get(timer["pump_entity"])
    if pump is not None:
        ctx.resolve("R30", f"{pump['key']}|gap", at=timer["due"], event_id=timer["restored_event"])


HANDLERS: dict[str, Any] = {}
TIMERS = {"R30": fire_gap_closed}
