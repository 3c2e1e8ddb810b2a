"""Who is in the hospital and what gets ordered for them: admissions, discharges, orders.

Beds fill to the configured occupancy; empty beds are admitted into (``patient.located``:
ADT unit, bed and the care area the drug library should use there) and patients without
active orders or pumps go home. New infusion orders arrive per unit as a Poisson process
whose rate is the unit's census times the per-patient-day rate of its kind, and pick a
drug from the unit's order mix that the patient is not already receiving.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator import clock, orders
from simulator.events import EHR
from simulator.hospital import Patient, new_weight
from simulator.medications import FORMULARY, ORDER_MIX

if TYPE_CHECKING:
    from simulator.config import UnitSpec
    from simulator.medications import Drug
    from simulator.simulation import Simulation


class Census:
    def __init__(self, sim: Simulation):
        self.sim = sim

    def start(self) -> None:
        for unit in self.sim.config.units:
            self._schedule_order(unit)
            self.sim.engine.call_after(self.sim.rng.randint(1, 59) * clock.MINUTE,
                                       self._hour, unit)

    def admit(self, unit: UnitSpec, bed: str, at_ms: int, *, backfill: bool = False) -> Patient:
        sim = self.sim
        patient = Patient(sim.ids.next("PAT"), sim.ids.next("ENC"), unit, bed,
                          new_weight(sim.rng), at_ms)
        sim.hospital.patients.append(patient)
        sim.hospital.occupied[(unit.code, bed)] = patient
        sim.emitter.emit("patient.located", at_ms,
                         {"patient_id": patient.patient_id, "encounter_id": patient.encounter_id},
                         {"unit": unit.code, "bed": bed, "care_area": unit.care_area}, EHR,
                         backfill=backfill)
        return patient

    def _hour(self, unit: UnitSpec) -> None:
        sim = self.sim
        activity = sim.config.activity
        sim.engine.call_after(clock.HOUR, self._hour, unit)
        for bed in sim.hospital.empty_beds(unit):
            if sim.rng.random() < activity.admissions_per_empty_bed_hour:
                self.admit(unit, bed, sim.engine.now)
        for patient in [p for p in sim.hospital.patients if p.unit is unit]:
            if sim.rng.random() >= activity.discharges_per_idle_patient_hour:
                continue
            if patient.active_orders() or self._at_bedside(patient):
                continue
            sim.hospital.patients.remove(patient)
            del sim.hospital.occupied[(unit.code, patient.bed)]

    def _at_bedside(self, patient: Patient) -> bool:
        return any(c.patient is patient for p in self.sim.hospital.pumps_by_unit[patient.unit.code]
                   for c in p.channels)

    def _schedule_order(self, unit: UnitSpec) -> None:
        sim = self.sim
        census = sum(1 for p in sim.hospital.patients if p.unit is unit)
        per_day = sim.config.activity.orders_per_patient_day.get(unit.kind, 0.0)
        rate = max(census, 1) * per_day / clock.DAY
        if rate <= 0:
            return
        sim.engine.call_after(int(sim.rng.expovariate(rate)), self._order_arrives, unit)

    def _order_arrives(self, unit: UnitSpec) -> None:
        sim = self.sim
        self._schedule_order(unit)
        patients = [p for p in sim.hospital.patients if p.unit is unit]
        if not patients:
            return
        patient = sim.rng.choice(patients)
        drug = pick_drug(sim, patient)
        if drug is None:
            return
        order = orders.write(sim, patient, drug, sim.engine.now)
        sim.care.new_order(order)


def pick_drug(sim: Simulation, patient: Patient) -> Drug | None:
    taken = {o.drug.key for o in patient.active_orders()}
    mix = [(key, weight) for key, weight in ORDER_MIX[patient.unit.kind] if key not in taken]
    if not mix:
        return None
    pick = sim.rng.random() * sum(weight for _key, weight in mix)
    for key, weight in mix:
        pick -= weight
        if pick < 0:
            return FORMULARY[key]
    return FORMULARY[mix[-1][0]]


def poisson(sim: Simulation, mean: float) -> int:
    """A Poisson draw (Knuth), small means only."""
    limit, k, product = math.exp(-mean), 0, sim.rng.random()
    while product > limit:
        k += 1
        product *= sim.rng.random()
    return k
