"""What happens while an infusion runs: pauses, titrations, heparin nomogram, PCA demands.

Each activity is a Poisson process on an infusing source, re-drawn at every transition
(memoryless, so re-drawing keeps the rate): clinician pauses (hold-expired alarm after
2 min, R24 after 30 min), titrations of titratable drips within the ordered range (the
injected error steps outside it: R02 and usually R01), heparin dose changes by order
modification with the pump following minutes later (R01 is don't-care in between), and
patient-controlled boluses within lockout and hourly maximum.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulator import checks, clock, ders, orders, programs
from simulator.alarms import SPECS
from simulator.checks import subjects_of
from simulator.errors import ErrorKind
from simulator.events import qty
from simulator.medications import volume_for_dose

if TYPE_CHECKING:
    from simulator.infusions import Source
    from simulator.simulation import Simulation
    from simulator.truth import Injection

R24_MS = 30 * clock.MINUTE
PCA_LOCKOUT_MS = 10 * clock.MINUTE


class Routines:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.activity = sim.config.activity

    def on_change(self, source: Source) -> None:
        """Called after every transition of ``source``."""
        sim = self.sim
        if source.state not in ("paused", "kvo"):
            if source.state_watch is not None:
                source.state_watch.satisfy(sim.engine.now)
                source.state_watch = None
            if source.reminder is not None:
                sim.alarms.clear(source.reminder)
                source.reminder = None
        if source.state == "infusing":
            sim.alarms.arm(source)
            self._arm(source)

    def _after(self, rate_per_hour: float, fn: object, source: Source) -> None:
        if rate_per_hour > 0:
            delay = int(self.sim.rng.expovariate(rate_per_hour / clock.HOUR))
            self.sim.engine.call_after(delay, fn, source, source.gen)  # type: ignore[arg-type]

    def _arm(self, source: Source) -> None:
        if source.role == "primary":
            self._after(self.activity.pauses_per_infusing_hour, self._pause, source)
            self._early_change(source)
        order = source.order
        if order is None or not as_ordered(source):
            return
        if order.titration is not None and source.dose is not None:
            self._after(60 / self.activity.titration_interval_mean, self._titrate, source)
        if order.drug.key == "heparin":
            self._after(1 / self.activity.heparin_nomogram_interval_h, self._nomogram, source)
        if order.drug.pca:
            self._after(self.activity.pca_demands_per_hour, self._pca, source)

    def _early_change(self, source: Source) -> None:
        sim = self.sim
        if source.early_minutes is None:
            early = sim.rng.random() < self.activity.early_bag_change_share
            source.early_minutes = sim.rng.randint(5, 30) if early else 0
        order = source.order
        if not source.early_minutes or order is None or not order.continuous or source.rate <= 0:
            return
        left = (source.program.vtbi - source.vol_base) * clock.HOUR / source.rate
        at_ms = sim.engine.now + int(left) - source.early_minutes * clock.MINUTE
        if at_ms > sim.engine.now:
            sim.engine.call_at(at_ms, self._replace, source, source.gen)

    def _replace(self, source: Source, gen: int) -> None:
        order = source.order
        if (self._live(source, gen) and order is not None and order.active
                and source.channel.patient is order.patient):
            self.sim.care.replace_bag(source)

    def _live(self, source: Source, gen: int) -> bool:
        return gen == source.gen and source.state == "infusing" and not source.channel.busy

    # -- pauses ---------------------------------------------------------------------------
    def _pause(self, source: Source, gen: int) -> None:
        if self._live(source, gen):
            self.sim.engine.spawn(self._paused(source))

    def _paused(self, source: Source) -> Generator[int, None, None]:
        sim = self.sim
        ref = sim.lifecycle.pause(source, "clinician")
        gen = source.gen
        if source.order is not None and source.order.active:
            source.state_watch = sim.truth.watch("R24", "paused_too_long", ref,
                                                 subjects_of(source), ref.at_ms + R24_MS,
                                                 detail=source.program.drug.name)
        median = math.log(self.activity.pause_median)
        duration = clock.minutes(min(240.0, sim.rng.lognormvariate(median, 1.0)))
        hold = self.activity.hold_expiry_s * clock.SECOND
        if duration > hold + clock.SECOND:
            yield hold
            if gen != source.gen:
                return
            source.reminder = sim.alarms.raise_alarm(SPECS["hold"], source.channel.pump,
                                                     source.channel, source)
            duration -= hold
        yield duration
        if gen == source.gen and source.state == "paused":
            sim.lifecycle.resume(source)

    # -- titration ------------------------------------------------------------------------
    def _titrate(self, source: Source, gen: int) -> None:
        sim = self.sim
        if not self._live(source, gen) or source.order is None or source.dose is None:
            return
        low, high, step = source.order.titration or (Decimal(0), Decimal(0), Decimal(1))
        current = source.dose
        if sim.dice.roll(ErrorKind.TITRATION_OUT_OF_RANGE):
            if sim.rng.random() < 0.7:
                new = high + step * sim.rng.randint(2, 6)
            else:
                new = max(low / 2, step / 2)
            injection = sim.truth.inject(ErrorKind.TITRATION_OUT_OF_RANGE, sim.engine.now,
                                         subjects_of(source), f"{new} {source.program.dose_unit}")
            sim.engine.spawn(self._titrate_checked(source, new, injection))
            return
        move = step * sim.rng.choice((-2, -1, -1, 1, 1, 2))
        new = min(high, max(low, current + move))
        if new == current:
            new = min(high, max(low, current - move))
        if new != current:
            self.apply(source, new, None)

    def _titrate_checked(self, source: Source, dose: Decimal,
                         injection: Injection) -> Generator[int, None, None]:
        sim = self.sim
        program = programs.recompute(replace(source.program, dose=dose))
        verdict = ders.check(program)
        if verdict is not None:
            outcome = "overridden" if verdict.limit_kind == "soft" else "reprogrammed"
            seconds = ders.override_seconds(sim, False)
            yield from ders.alert(sim, source.subject(), subjects_of(source),
                                  source.channel.pump, program, verdict, outcome, seconds,
                                  injection)
            if outcome != "overridden":
                injection.detail += "; caught by a hard limit"
                return
        if source.state == "infusing":
            self.apply(source, dose, injection)

    def apply(self, source: Source, dose: Decimal, injection: Injection | None) -> None:
        """Change the dose of ``source`` (the pump recomputes the flow), check and chart."""
        sim = self.sim
        program = programs.recompute(replace(source.program, dose=dose))
        ref = sim.lifecycle.change_rate(source, program.rate, dose)
        checks.check_rate_change(sim, source, ref, injection or source.injection)
        sim.documentation.on_event(source, ref, "rate")

    # -- heparin nomogram -----------------------------------------------------------------
    def _nomogram(self, source: Source, gen: int) -> None:
        sim = self.sim
        order = source.order
        if not self._live(source, gen) or order is None or order.dose is None:
            return
        new = min(Decimal(24), max(Decimal(10), order.dose + sim.rng.choice((-3, -2, -1, 1, 2, 3))))
        if new == order.dose:
            return
        order.dose = new
        orders.modify(sim, order, {"dose": qty(new, order.dose_unit or "")}, "aPTT nomogram")
        # The pump runs the old dose until the nurse follows, and R01 rightly says so at
        # once: don't care from the modification. The window opens here, not once the pump
        # follows, so a run that ends before the nurse reprograms still records it.
        window = sim.truth.suppress(source.channel.pump.pump_id, sim.engine.now, None,
                                    ("R01",), "order modified; the pump follows minutes later")
        sim.engine.spawn(self._follow(source, new, window))

    def _follow(self, source: Source, dose: Decimal,
                window: dict[str, Any]) -> Generator[int, None, None]:
        sim = self.sim
        yield sim.rng.randint(2, 12) * clock.MINUTE
        for _minute in range(60):
            if source.state != "paused" and source.state != "alarm" and not source.channel.busy:
                break
            yield clock.MINUTE  # the nurse changes the rate once the channel runs again
        window["to_ms"] = sim.engine.now
        if source.state != "infusing" or source.channel.busy:
            return
        self.apply(source, dose, None)
        if sim.rng.random() < self.activity.rebolus_share and source.order is not None:
            bolus = source.order.drug.bolus
            if bolus is not None:
                self._bolus(source, bolus[0], bolus[1], "bolus")

    # -- boluses --------------------------------------------------------------------------
    def _pca(self, source: Source, gen: int) -> None:
        sim = self.sim
        if not self._live(source, gen) or source.order is None:
            return
        bolus = source.order.drug.bolus
        if bolus is None:
            return
        dose, unit, per_hour = bolus
        now = sim.engine.now
        recent = [(t, d) for t, d in source.boluses if now - t < clock.HOUR]
        if recent and now - recent[-1][0] < PCA_LOCKOUT_MS:
            return  # locked out: the pump denies the demand
        if per_hour is not None and sum((d for _t, d in recent), Decimal(0)) + dose > per_hour:
            return
        self._bolus(source, dose, unit, "pca")

    def _bolus(self, source: Source, dose: Decimal, unit: str, role: str) -> None:
        sim = self.sim
        weight = source.order.weight if source.order is not None else None
        volume = volume_for_dose(dose, unit, source.program.drug, weight)
        if source.remaining(sim.engine.now) < volume + 1:
            return
        source.boluses.append((sim.engine.now, dose))
        ref = sim.lifecycle.bolus(source, {"dose": qty(dose, unit), "volume": qty(volume, "mL")},
                                  volume, role)
        checks.check_bolus(sim, source, ref, dose, unit, None)

    def on_started(self, source: Source, plan: object) -> None:
        self.sim.incidents.on_started(source, plan)


def as_ordered(source: Source) -> bool:
    """Whether the pump runs the order's own drug entry, strength, unit and weight."""
    order, program = source.order, source.program
    if order is None or program.library_mode != "library":
        return False
    drug = order.drug
    return (program.drug is drug and program.dose_unit == order.dose_unit
            and program.amount == drug.amount and program.volume == drug.volume
            and program.weight == order.weight)
