"""Orders (MedicationRequest): what prescribers ask for, and the EHR events about them.

An order is placed, verified by a pharmacist minutes later, sometimes modified, and
discontinued (continuous and intermittent orders) or completed (one-off runs such as
potassium). Its expected pump rate is derived once, exactly, from the dose, the
concentration and the dosing weight. Order-level injections (a dose above the library's
soft or hard limit, an order nobody starts) are decided here, when the order is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger import units
from simulator import clock
from simulator.errors import ErrorKind, SimulatorError
from simulator.events import EHR, PHARMACY, Ref, compact, qty
from simulator.medications import ORDER_DURATION_H, Drug
from simulator.truth import Subjects

if TYPE_CHECKING:
    from simulator.hospital import Patient
    from simulator.infusions import Source
    from simulator.simulation import Simulation
    from simulator.truth import Injection, Watch


@dataclass(eq=False)
class Order:
    order_id: str
    patient: Patient
    drug: Drug
    dose: Decimal | None
    rate: Decimal | None
    placed_ms: int
    start_ms: int
    stop_ms: int
    titration: tuple[Decimal, Decimal, Decimal] | None = None
    weight: Decimal | None = None
    active: bool = True
    injection: Injection | None = None
    sources: list[Source] = field(default_factory=list)
    started: bool = False
    start_watch: Watch | None = None
    placed_ref: Ref | None = None

    @property
    def dose_unit(self) -> str | None:
        if self.dose is None:
            return None
        return self.drug.one_off_unit if self.drug.interval_h else self.drug.dose_unit

    @property
    def continuous(self) -> bool:
        return self.drug.continuous

    def flow(self, dose: Decimal) -> Decimal:
        """Exact mL/h of a dose rate of this order (no display rounding)."""
        amount, amount_unit, volume = self.drug.concentration_parts()
        return units.flow_from_dose_rate(dose, self.drug.dose_unit or "", amount, amount_unit,
                                         volume, "mL", self.weight)

    def expected_rate(self) -> Decimal:
        if self.rate is not None or self.dose is None:
            return self.rate or Decimal(0)
        return self.flow(self.dose)

    def subjects(self) -> Subjects:
        return Subjects(patient_id=self.patient.patient_id, order_id=self.order_id)

    def subject(self) -> dict[str, str]:
        return {"order_id": self.order_id, "patient_id": self.patient.patient_id,
                "encounter_id": self.patient.encounter_id}

    def data(self) -> dict[str, Any]:
        drug = self.drug
        unit = self.dose_unit
        titration = None
        if self.titration is not None and unit is not None:
            low, high, step = self.titration
            titration = {"min": qty(low, unit), "max": qty(high, unit), "step": qty(step, unit)}
        bolus = None
        if drug.bolus is not None:
            dose, bolus_unit, per_hour = drug.bolus
            bolus = compact({"dose": qty(dose, bolus_unit),
                             "max_per_hour": qty(per_hour, bolus_unit) if per_hour else None})
        concentration = None
        if drug.amount is not None and drug.amount_unit and drug.volume is not None:
            concentration = {"amount": qty(drug.amount, drug.amount_unit),
                             "volume": qty(drug.volume, "mL")}
        return compact({
            "medication": drug.medication(),
            "concentration": concentration,
            "dose": qty(self.dose, unit) if self.dose is not None and unit else None,
            "rate": qty(self.rate, "mL/h") if self.rate is not None else None,
            "titration": titration,
            "vtbi": qty(drug.vtbi, "mL"),
            "dosing_weight": qty(self.weight, "kg") if self.weight is not None else None,
            "route": "IV",
            "high_alert": drug.high_alert,
            "continuous": drug.continuous,
            "bolus": bolus,
            "start_at": clock.fmt(self.start_ms, 0),
        })


def write(sim: Simulation, patient: Patient, drug: Drug, at_ms: int, *,
          clean: bool = False) -> Order:
    """A new order for ``patient``: dose chosen and order-level injections decided
    (``clean``: none, for the warm-start history)."""
    rng, activity, dice = sim.rng, sim.config.activity, sim.dice
    dose: Decimal | None = None
    rate: Decimal | None = None
    titration = drug.titration
    if drug.interval_h is not None:
        dose, rate = drug.one_off_dose, drug.doses[0]
    elif drug.dose_unit is None:
        rate = rng.choice(drug.doses)
    else:
        dose = rng.choice(drug.doses)
    injection_kind: ErrorKind | None = None
    # Plain fluids are left out: an order above their pump-wide limit is not a real order.
    limited = drug.limits.soft_max is not None and (
        drug.dose_unit is not None or drug.interval_h is not None)
    if limited and not clean:
        for kind in (ErrorKind.HARD_LIMIT_THEN_BASIC, ErrorKind.FAST_OVERRIDE,
                     ErrorKind.SOFT_LIMIT_OVERRIDE):
            if dice.roll(kind) and injection_kind is None:
                injection_kind = kind
        natural = rng.random() < activity.order_beyond_soft_limit_share
        if injection_kind is not None or natural:
            beyond = _beyond(sim, drug, injection_kind is ErrorKind.HARD_LIMIT_THEN_BASIC)
            if drug.dose_unit is not None:
                dose = beyond
            else:
                rate = beyond
            titration = None
    if (not clean and drug.continuous and dice.roll(ErrorKind.ORDERED_NOT_RUNNING)
            and injection_kind is None):
        injection_kind = ErrorKind.ORDERED_NOT_RUNNING
    delay = min(50.0, rng.lognormvariate(_ln(activity.order_start_delay_median), 0.5))
    start_ms = at_ms + clock.minutes(delay)
    duration_h = rng.lognormvariate(_ln(ORDER_DURATION_H[drug.key]), 0.5)
    order = Order(
        order_id=sim.ids.next("ORD"), patient=patient, drug=drug, dose=dose, rate=rate,
        placed_ms=at_ms, start_ms=start_ms,
        stop_ms=at_ms + round(duration_h * clock.HOUR), titration=titration,
        weight=patient.weight if drug.weight_based else None,
    )
    if injection_kind is not None:
        order.injection = sim.truth.inject(injection_kind, at_ms, order.subjects(),
                                           f"{drug.name} {dose or rate}")
    patient.orders.append(order)
    return order


def _beyond(sim: Simulation, drug: Drug, hard: bool) -> Decimal:
    limits = drug.limits
    if limits.soft_max is None or limits.hard_max is None:
        raise SimulatorError(f"{drug.key} has no soft and hard maximum")
    if hard:
        low, high = limits.hard_max * Decimal("1.1"), limits.hard_max * Decimal("1.3")
    else:
        low, high = limits.soft_max * Decimal("1.1"), min(limits.soft_max * Decimal("1.5"),
                                                           limits.hard_max * Decimal("0.95"))
    fraction = Decimal(sim.rng.randint(0, 100)) / 100
    if drug.dose_unit is None:
        step = Decimal(5)  # a flow in mL/h
    else:
        step = drug.titration[2] if drug.titration else Decimal("0.5")
    value = low + (high - low) * fraction
    return max(step, (value / step).to_integral_value() * step)


def _ln(value: float) -> float:
    return math.log(value)


def place(sim: Simulation, order: Order, *, backfill: bool = False,
          verified_ms: int | None = None) -> Ref:
    prescriber = {"id": sim.ids.staff("MD", order.patient.unit.code), "role": "prescriber"}
    ref = sim.emitter.emit("order.placed", order.placed_ms, order.subject(), order.data(), EHR,
                           actor=prescriber, backfill=backfill)
    order.placed_ref = ref
    if verified_ms is None:
        delay = min(40.0, sim.rng.lognormvariate(_ln(sim.config.activity.verify_delay_median), 0.6))
        verified_ms = order.placed_ms + clock.minutes(delay)
    if backfill:
        verify(sim, order, verified_ms, backfill=True)
    else:
        sim.engine.call_at(verified_ms, verify, sim, order, verified_ms)
    return ref


def verify(sim: Simulation, order: Order, at_ms: int, backfill: bool = False) -> None:
    pharmacist = {"id": sim.ids.staff("RPH", "PHARM"), "role": "pharmacist"}
    sim.emitter.emit("order.verified", at_ms, order.subject(), {}, PHARMACY, actor=pharmacist,
                     backfill=backfill)


def modify(sim: Simulation, order: Order, changes: dict[str, Any], reason: str) -> Ref:
    prescriber = {"id": sim.ids.staff("MD", order.patient.unit.code), "role": "prescriber"}
    return sim.emitter.emit("order.modified", sim.engine.now, order.subject(),
                            {**changes, "reason": reason}, EHR, actor=prescriber)


def end(sim: Simulation, order: Order, how: str, reason: str) -> Ref:
    """``order.discontinued`` or ``order.completed`` now; the order stops being active."""
    order.active = False
    now = sim.engine.now
    data = {"effective_at": clock.fmt(now, sim.config.ehr_utc_offset_minutes), "reason": reason}
    actor = {"id": sim.ids.staff("MD", order.patient.unit.code), "role": "prescriber"}
    return sim.emitter.emit(f"order.{how}", now, order.subject(), data, EHR, actor=actor)
