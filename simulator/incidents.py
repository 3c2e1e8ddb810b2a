"""Unit-level incidents injected once per unit-hour, and how they are discovered.

* an infusion hung with **no order** (R08; it can never be charted, so R20 follows),
* the same drug started on a second channel for the same patient (**duplicate therapy**:
  R27, and R11 because it was keyed in by hand),
* a **bolus without an order** from a running bag (R28).

A wrong-patient infusion, a duplicate line and an unordered infusion are found and stopped
20-120 min later; the wrong-patient order is then started for the right patient.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from simulator import checks, clock
from simulator.checks import subjects_of
from simulator.errors import ErrorKind
from simulator.events import qty
from simulator.infusions import Program
from simulator.medications import FORMULARY, flow_for
from simulator.programming import Plan

if TYPE_CHECKING:
    from simulator.config import UnitSpec
    from simulator.infusions import Source
    from simulator.simulation import Simulation

K = ErrorKind
UNORDERED = ("sodium_chloride", "lactated_ringers", "insulin")


class Incidents:
    def __init__(self, sim: Simulation):
        self.sim = sim

    def start(self) -> None:
        for unit in self.sim.config.units:
            self.sim.engine.call_after(self.sim.rng.randint(1, 59) * clock.MINUTE, self._hour, unit)

    def _hour(self, unit: UnitSpec) -> None:
        sim = self.sim
        sim.engine.call_after(clock.HOUR, self._hour, unit)
        no_order = sim.dice.roll(K.NO_ORDER)
        duplicate = sim.dice.roll(K.DUPLICATE_THERAPY)
        bolus = sim.dice.roll(K.BOLUS_WITHOUT_ORDER)
        if no_order:
            self._no_order(unit)
        if duplicate:
            self._duplicate(unit)
        if bolus:
            self._bolus(unit)

    def _no_order(self, unit: UnitSpec) -> None:
        sim = self.sim
        patients = [p for p in sim.hospital.patients if p.unit is unit]
        if not patients:
            return
        patient = sim.rng.choice(patients)
        taken = {o.drug.key for o in patient.active_orders()}
        taken |= {s.program.drug.key for s in sim.sources.values() if s.patient is patient}
        choices = [key for key in UNORDERED if key not in taken]
        channel = sim.hospital.free_channel(patient, sim.rng)
        if not choices or channel is None:
            return
        drug = FORMULARY[sim.rng.choice(choices)]
        program = Program(drug=drug, rate=sim.rng.choice(drug.doses), vtbi=drug.vtbi,
                          care_area=unit.care_area)
        if drug.dose_unit is not None:
            amount, amount_unit, volume = drug.concentration_parts()
            program.dose, program.dose_unit = Decimal(2), drug.dose_unit
            program.amount, program.amount_unit, program.volume = amount, amount_unit, volume
            program.rate = flow_for(Decimal(2), drug.dose_unit, amount, amount_unit, volume, None)
        plan = Plan(channel, patient, None, drug_program=program, kind=K.NO_ORDER, manual=True)
        plan.injection = sim.truth.inject(K.NO_ORDER, sim.engine.now, sim.programming.who(plan),
                                          drug.name)
        channel.busy = True
        sim.engine.spawn(sim.programming.run(plan))

    def _duplicate(self, unit: UnitSpec) -> None:
        sim = self.sim
        candidates = [
            s for s in sim.sources.values()
            if s.channel.pump.unit is unit and s.role == "primary" and s.state == "infusing"
            and s.order is not None and s.order.active and s.order.continuous
            and s.channel.patient is s.order.patient
        ]
        if not candidates:
            return
        source = sim.rng.choice(candidates)
        order = source.order
        if order is None:
            return
        channel = sim.hospital.free_channel(order.patient, sim.rng)
        if channel is None or channel is source.channel:
            return
        plan = Plan(channel, order.patient, order, kind=K.DUPLICATE_THERAPY, manual=True)
        plan.injection = sim.truth.inject(K.DUPLICATE_THERAPY, sim.engine.now,
                                          sim.programming.who(plan), order.drug.name)
        channel.busy = True
        sim.engine.spawn(sim.programming.run(plan))

    def _bolus(self, unit: UnitSpec) -> None:
        sim = self.sim
        now = sim.engine.now
        candidates = [
            s for s in sim.sources.values()
            if s.channel.pump.unit is unit and s.state == "infusing" and not s.channel.busy
            and (s.order is None or s.order.drug.bolus is None) and s.remaining(now) > 30
        ]
        if not candidates:
            return
        source = sim.rng.choice(candidates)
        if source.program.drug.dose_unit is None:
            volume, rate = min(Decimal(250), source.remaining(now) - 10), Decimal(999)
        else:
            minutes = Decimal(sim.rng.randint(5, 15))
            volume = max(Decimal("0.5"), (source.rate * minutes / 60).quantize(Decimal("0.1")))
            rate = None
        injection = sim.truth.inject(K.BOLUS_WITHOUT_ORDER, now, subjects_of(source),
                                     f"{volume} mL of {source.program.drug.name}")
        data = {"volume": qty(volume, "mL")}
        if rate is not None:
            data["rate"] = qty(rate, "mL/h")
        ref = sim.lifecycle.bolus(source, data, volume, "bolus")
        checks.check_bolus(sim, source, ref, None, None, injection)

    def on_started(self, source: Source, plan: object) -> None:
        if not isinstance(plan, Plan):
            return
        sim = self.sim
        delay = {K.WRONG_PATIENT: (20, 90), K.NO_ORDER: (30, 120),
                 K.DUPLICATE_THERAPY: (20, 50)}.get(plan.kind) if plan.kind else None
        if delay is None:
            return
        minutes = sim.rng.randint(*delay)
        sim.engine.call_after(minutes * clock.MINUTE, self._discovered, source, plan.kind)

    def _discovered(self, source: Source, kind: ErrorKind) -> None:
        sim = self.sim
        if source.state == "stopped":
            return
        sim.care.finish(source, kind.value.replace("_", " "))
        order = source.order
        if kind is K.WRONG_PATIENT and order is not None and order.active:
            sim.care.start(order)
