"""Nurse documentation: validating pump data into the EHR, after changes and hourly.

Every start and rate change is charted (``documentation.validated`` with the pump event as
``source_event_ids``) a few minutes to 50 min later, and every infusing channel is
validated hourly. A few hourly entries are edited (volume rounded to the mL: within the
R03 tolerance, so no condition). Injected: a start or rate change left uncharted for over
an hour (R20/R21 — every documentation of that source is withheld for 60 min) and a
charting error (rate charted 20-100 % off the pump: R03).

R20/R21 are deadline rules: armed at the pump event, satisfied by a validation of the same
order, pump and channel whose ``observed_at`` is not before the event, made within 60 min.
When an error withholds charting, it is withheld for that order, pump and channel.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from ledger import units
from simulator import clock
from simulator.checks import subjects_of
from simulator.errors import ErrorKind
from simulator.events import EHR, Ref, compact, qty

if TYPE_CHECKING:
    from simulator.infusions import Source
    from simulator.simulation import Simulation
    from simulator.truth import Injection, Watch

WINDOW_MS = 60 * clock.MINUTE
ALIGN_MS = 5 * clock.MINUTE


class Documentation:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.count = 0
        # (order_id, pump_id, channel) -> open R20/R21 watches, and charting withheld until
        self._open: dict[tuple[str, str, str], list[Watch]] = {}
        self._withheld: dict[tuple[str, str, str], tuple[int, Injection]] = {}

    @staticmethod
    def key(source: Source) -> tuple[str, str, str] | None:
        if source.order is None:
            return None
        return (source.order.order_id, source.channel.pump.pump_id, source.channel.label)

    def on_event(self, source: Source, ref: Ref, what: str) -> None:
        """A start or a rate change: arm R20/R21 and chart it later (or not)."""
        sim = self.sim
        rule, kind = ("R20", "undocumented_start") if what == "start" else (
            "R21", "undocumented_rate_change")
        key = self.key(source)
        injection = source.injection if key is None else None
        withheld = self._withheld.get(key) if key is not None else None
        if withheld is not None and withheld[0] > ref.at_ms:
            injection = withheld[1]
        watch = sim.truth.watch(rule, kind, ref, subjects_of(source), ref.at_ms + WINDOW_MS,
                                injection=injection, detail=f"{ref.type} not charted")
        if key is None:
            return
        self._open.setdefault(key, []).append(watch)
        error = ErrorKind.UNDOCUMENTED_START if what == "start" else (
            ErrorKind.UNDOCUMENTED_RATE_CHANGE)
        if sim.dice.roll(error):
            injected = sim.truth.inject(error, ref.at_ms, subjects_of(source), ref.type)
            self._withheld[key] = (ref.at_ms + WINDOW_MS + 3 * sim.truth.band_ms, injected)
            for pending in self._open[key]:
                if pending.satisfied_at is None and not pending.done:
                    pending.injection = injected
            return
        median = math.log(sim.config.activity.documentation_delay_median)
        delay = min(50.0, sim.rng.lognormvariate(median, 0.7))
        values = (source.rate, source.dose_qty())
        sim.engine.call_after(clock.minutes(delay), self._chart_event, source, ref, values)

    def _chart_event(self, source: Source, ref: Ref,
                     values: tuple[Decimal, dict[str, str] | None]) -> None:
        later = [t for t, kind in source.changes
                 if ref.at_ms < t <= ref.at_ms + ALIGN_MS and kind == "rate"]
        if later:
            return  # the newer rate is charted instead
        rate, dose = values
        self._chart(source, ref.at_ms, ref.occurred_at, rate, dose, None, [ref.event_id])

    def hourly(self) -> None:
        sim = self.sim
        sim.engine.call_after(clock.HOUR, self.hourly)
        now = sim.engine.now
        for source in list(sim.sources.values()):
            if source.order is None or source.state != "infusing":
                continue
            delay = sim.rng.randint(6, 25) * clock.MINUTE
            values = (source.rate, source.dose_qty(), source.volume_q(now))
            sim.engine.call_after(delay, self._chart_hourly, source, now, values)

    def _chart_hourly(self, source: Source, observed_ms: int,
                      values: tuple[Decimal, dict[str, str] | None, Decimal]) -> None:
        if any(abs(t - observed_ms) <= ALIGN_MS for t, _kind in source.changes):
            return
        rate, dose, volume = values
        observed = clock.fmt(observed_ms, self.sim.config.ehr_utc_offset_minutes)
        last = [source.last_ref.event_id] if source.last_ref is not None else []
        self._chart(source, observed_ms, observed, rate, dose, volume, last)

    def _chart(self, source: Source, observed_ms: int, observed: str, rate: Decimal,
               dose: dict[str, str] | None, volume: Decimal | None, evidence: list[str]) -> None:
        sim = self.sim
        now = sim.engine.now
        key = self.key(source)
        if source.order is None or key is None:
            return
        withheld = self._withheld.get(key)
        if withheld is not None and now < withheld[0]:
            return
        order = source.order
        subject = {"order_id": order.order_id, "patient_id": order.patient.patient_id,
                   "pump_id": source.channel.pump.pump_id, "channel": source.channel.label}
        nurse = {"id": sim.ids.staff("RN", order.patient.unit.code), "role": "nurse"}
        charted_rate, charted_volume = rate, volume
        edited: Ref | None = None
        injection = None
        if sim.dice.roll(ErrorKind.CHARTING_ERROR):
            injection = sim.truth.inject(ErrorKind.CHARTING_ERROR, now, subjects_of(source),
                                         "rate charted wrong")
            factor = Decimal(sim.rng.choice((50, 60, 75, 125, 150, 200))) / 100
            charted_rate = (rate * factor).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
            edited = sim.emitter.emit("documentation.edited", now, subject, {
                "field": "rate", "device_value": qty(rate, "mL/h"),
                "charted_value": qty(charted_rate, "mL/h"), "reason": "corrected by nurse"},
                EHR, actor=nurse)
        elif (volume is not None and volume >= 20
              and sim.rng.random() < sim.config.activity.documentation_edit_share):
            charted_volume = volume.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
            sim.emitter.emit("documentation.edited", now, subject, {
                "field": "volume_infused", "device_value": qty(volume, "mL"),
                "charted_value": qty(charted_volume, "mL"), "reason": "rounded"},
                EHR, actor=nurse)
        ref = sim.emitter.emit("documentation.validated", now, subject, compact({
            "observed_at": observed, "rate": qty(charted_rate, "mL/h"), "dose_rate": dose,
            "volume_infused": qty(charted_volume, "mL") if charted_volume is not None else None,
            "source_event_ids": evidence,
        }), EHR, actor=nurse)
        self.count += 1
        if edited is not None and not units.within_tolerance(
                charted_rate, rate, rel=Decimal("0.05"), floor=Decimal("0.1")):
            sim.truth.add("R03", "charted_differs_from_pump", ref, subjects_of(source),
                          event_ids=[edited.event_id, *evidence], injection=injection,
                          detail=f"charted {charted_rate} mL/h, pump {rate} mL/h")
        for watch in self._open.get(key, ()):
            if watch.trigger.at_ms <= observed_ms:
                watch.satisfy(now)
        self._open[key] = [w for w in self._open.get(key, ())
                           if w.satisfied_at is None and not w.done]
