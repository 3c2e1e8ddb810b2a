"""Volume infused per interval, by event time: a meter that integrates the running rate.

IHE/ICU practice charts the volume infused every hour from device data. The meter of an
episode integrates the flow the pump was running (mL/h, from start, rate changes, KVO and
telemetry; zero while paused) plus bolus volumes over the *device* clock, and closes an
interval each time an event's ``occurred_at`` passes a boundary — never on the wall clock,
so a replay or a rebuild closes exactly the same intervals. Boundaries align to the UTC
epoch (hourly intervals end on the hour). The final, partial interval closes when the
episode ends.

Events that arrive late with an earlier device time cannot reopen a closed interval: time
is clamped to the meter's cursor (the late event still counts, at the cursor). The device's
own cumulative counter (``volume_infused`` on telemetry, pause, stop) is kept beside the
calculated total, so reconciliation (R19) can compare the two at the same moment.

The meter state is a JSON dict of strings (decimal text, UTC instants).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.units import convert
from projections.documentation.model import (
    add,
    dec,
    divide,
    multiply,
    next_boundary,
    parse_time,
    rounded,
    seconds,
    text,
    utc_text,
)

#: At most this many intervals close on one event; a longer silence (or a pump clock jump)
#: closes one gap interval for the rest, so a bad clock cannot flood the chart.
MAX_INTERVALS_PER_EVENT = 168
_HOUR = Decimal(3600)
_MAX_EVENTS = 50


@dataclass(frozen=True)
class Interval:
    """A closed interval: its period and the volume calculated for it (mL)."""

    start: str
    end: str
    volume: Decimal
    events: tuple[str, ...]
    gap: bool = False


class VolumeMeter:
    """Integrates one episode's flow over device time and closes intervals."""

    def __init__(self, interval: timedelta):
        if interval < timedelta(minutes=1):
            raise ValueError("the volume interval is at least one minute")
        self.interval = interval

    def start(self, at: datetime) -> dict[str, Any]:
        moment = utc_text(at)
        return {"at": moment, "opened": moment, "rate": "0", "acc": "0", "total": "0",
                "flow_event": None, "events": [], "device": None, "device_at": None,
                "calculated_at_device": None}

    def advance(self, meter: dict[str, Any], at: datetime) -> list[Interval]:
        """Integrate up to ``at`` and return the intervals that closed on the way."""
        cursor = parse_time(meter["at"])
        if at <= cursor:
            return []
        closed: list[Interval] = []
        boundary = next_boundary(cursor, self.interval)
        while boundary <= at and len(closed) < MAX_INTERVALS_PER_EVENT:
            self._integrate(meter, cursor, boundary)
            closed.append(self._close(meter, boundary))
            cursor = boundary
            boundary = next_boundary(cursor, self.interval)
        if boundary <= at:  # the cap was hit: the rest is one gap interval
            self._integrate(meter, cursor, at)
            closed.append(self._close(meter, at, gap=True))
            cursor = at
        self._integrate(meter, cursor, at)
        meter["at"] = utc_text(at)
        return closed

    def finish(self, meter: dict[str, Any], at: datetime) -> list[Interval]:
        """Close everything up to the episode's end, including the partial last interval."""
        closed = self.advance(meter, at)
        if parse_time(meter["at"]) > parse_time(meter["opened"]) or dec(meter["acc"]) > 0:
            closed.append(self._close(meter, parse_time(meter["at"])))
        return closed

    def set_flow(self, meter: dict[str, Any], flow: dict[str, str] | None, event_id: str) -> None:
        """The flow now running (``None`` or zero: not delivering), set by ``event_id``."""
        rate = text(convert(dec(flow["value"]), flow["unit"], "mL/h")) if flow else "0"
        if dec(rate) == dec(meter["rate"]):
            return  # telemetry repeating the running rate changes nothing
        meter["rate"] = rate
        meter["flow_event"] = event_id if dec(rate) > 0 else None
        _note(meter, event_id)

    def add_volume(self, meter: dict[str, Any], volume: dict[str, str] | None,
                   event_id: str) -> None:
        if volume:
            millilitres = convert(dec(volume["value"]), volume["unit"], "mL")
            meter["acc"] = text(add(dec(meter["acc"]), millilitres))
            meter["total"] = text(add(dec(meter["total"]), millilitres))
            _note(meter, event_id)

    def device_reading(self, meter: dict[str, Any], volume: dict[str, str] | None,
                       at: datetime) -> None:
        """Remember the pump's own cumulative counter and our total at that moment."""
        if volume:
            meter["device"] = text(convert(dec(volume["value"]), volume["unit"], "mL"))
            meter["device_at"] = utc_text(max(at, parse_time(meter["at"])))
            meter["calculated_at_device"] = meter["total"]

    # -- internals -----------------------------------------------------------------------
    @staticmethod
    def _integrate(meter: dict[str, Any], start: datetime, end: datetime) -> None:
        if end <= start:
            return
        volume = divide(multiply(dec(meter["rate"]), seconds(end - start)), _HOUR)
        meter["acc"] = text(add(dec(meter["acc"]), volume))
        meter["total"] = text(add(dec(meter["total"]), volume))

    def _close(self, meter: dict[str, Any], end: datetime, *, gap: bool = False) -> Interval:
        opened = parse_time(meter["opened"])
        interval = Interval(utc_text(opened) or "", utc_text(end) or "",
                            rounded(dec(meter["acc"])), tuple(meter["events"]), gap)
        meter["acc"] = "0"
        meter["opened"] = utc_text(end)
        # The flow in effect carries on into the next interval, and so does its source.
        meter["events"] = [meter["flow_event"]] if meter["flow_event"] else []
        return interval


def _note(meter: dict[str, Any], event_id: str) -> None:
    """Remember an event that shaped the open interval (bounded: first and latest kept)."""
    events = meter["events"]
    if event_id not in events:
        events.append(event_id)
        if len(events) > _MAX_EVENTS:
            del events[1]
