"""A warm start: the hospital as it is at ``--start``, with infusions already running.

Beds are filled to the occupancy, every patient gets the orders a patient of that unit
typically has, and each continuous order has a bag part-way through on a channel. The
history that explains this state is emitted first as a *backfill* (events before the
start, without ``received_at``, as EVENTS.md allows for backfills): admissions, library
activations, orders and their verification, the scan, association, auto-program, start
and its charting. This history is clean by construction — no truth conditions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from simulator import clock, orders
from simulator.census import pick_drug, poisson
from simulator.events import BCMA, EHR, GATEWAY, compact, qty
from simulator.infusions import Source
from simulator.programs import from_order

if TYPE_CHECKING:
    from simulator.hospital import Patient
    from simulator.orders import Order
    from simulator.simulation import Simulation

#: Orders per patient at the start, by unit kind (steady state of the arrival rates).
INITIAL_ORDERS = {"icu": 2.4, "stepdown": 1.0, "medsurg": 0.7, "oncology": 0.9}


def populate(sim: Simulation) -> None:
    start = sim.engine.now
    rng = sim.rng
    for pump in sim.hospital.pumps:
        at = start - rng.randint(2 * 24 * 60, 5 * 24 * 60) * clock.MINUTE
        sim.emitter.emit("pump.library_activated", at, {"pump_id": pump.pump_id},
                         {"library_version": sim.config.library_version}, GATEWAY,
                         pump=pump, backfill=True)
    for unit in sim.config.units:
        beds = sim.hospital.beds[unit.code]
        occupied = round(len(beds) * sim.config.activity.occupancy)
        for bed in rng.sample(beds, occupied):
            admitted = start - rng.randint(2 * 60, 6 * 24 * 60) * clock.MINUTE
            patient = sim.census.admit(unit, bed, admitted, backfill=True)
            for _ in range(poisson(sim, INITIAL_ORDERS[unit.kind])):
                drug = pick_drug(sim, patient)
                if drug is not None:
                    _initial_order(sim, patient, drug, admitted)


def _initial_order(sim: Simulation, patient: Patient, drug: object, admitted: int) -> None:
    rng, start = sim.rng, sim.engine.now
    age = rng.randint(40, 36 * 60) * clock.MINUTE
    placed = max(admitted + 10 * clock.MINUTE, start - age)
    order = orders.write(sim, patient, drug, placed, clean=True)  # type: ignore[arg-type]
    order.start_ms = placed + rng.randint(10, 30) * clock.MINUTE
    soonest = start + rng.randint(30, 600) * clock.MINUTE
    order.stop_ms = max(order.stop_ms - (start - placed), soonest)
    orders.place(sim, order, backfill=True, verified_ms=placed + rng.randint(3, 20) * clock.MINUTE)
    sim.engine.call_at(order.stop_ms, sim.care.discontinue, order)
    interval = order.drug.interval_h
    if interval is not None:
        sim.engine.call_at(start + rng.randint(1, interval * 60) * clock.MINUTE,
                           sim.care.start, order)
        order.started = True
        return
    if not order.continuous:
        sim.engine.call_at(start + rng.randint(1, 60) * clock.MINUTE, sim.care.start, order)
        return
    _running_bag(sim, order)


def _running_bag(sim: Simulation, order: Order) -> None:
    rng, start = sim.rng, sim.engine.now
    patient = order.patient
    channel = sim.hospital.free_channel(patient, rng)
    if channel is None:
        sim.engine.call_at(start + rng.randint(1, 30) * clock.MINUTE, sim.care.start, order)
        return
    program = from_order(order, patient.unit.care_area, "primary")
    bag_ms = int(program.vtbi / program.rate * clock.HOUR)
    earliest = max(order.start_ms, start - int(bag_ms * 0.95))
    if earliest >= start - 15 * clock.MINUTE:
        earliest = start - 20 * clock.MINUTE
    began = rng.randint(earliest, start - 15 * clock.MINUTE)
    program.mode, program.request_id = "auto", sim.ids.next("REQ")
    pump = channel.pump
    channel.patient = patient
    subject = {"pump_id": pump.pump_id, "channel": channel.label,
               "patient_id": patient.patient_id, "order_id": order.order_id}
    nurse = {"id": sim.ids.staff("RN", patient.unit.code), "role": "nurse"}
    emit = sim.emitter.emit
    emit("bcma.scan_recorded", began - 90 * clock.SECOND,
         {"patient_id": patient.patient_id, "order_id": order.order_id},
         {"scan_type": "patient", "value": patient.patient_id, "result": "match"}, BCMA,
         actor=nurse, backfill=True)
    emit("pump.associated", began - 80 * clock.SECOND,
         {k: subject[k] for k in ("pump_id", "channel", "patient_id")}, {"method": "scan"},
         GATEWAY, pump=pump, actor=nurse, backfill=True)
    emit("program.auto_requested", began - 60 * clock.SECOND, subject, compact({
        "request_id": program.request_id, "medication": program.drug.medication(),
        "concentration": program.concentration(), "dose": program.dose_qty(),
        "rate": qty(program.rate, "mL/h"), "vtbi": qty(program.vtbi, "mL"),
        "dosing_weight": qty(program.weight, "kg") if program.weight is not None else None,
    }), BCMA, pump=pump, actor=nurse, backfill=True)
    emit("program.auto_accepted", began - 58 * clock.SECOND, subject,
         {"request_id": program.request_id}, GATEWAY, pump=pump, backfill=True)
    emit("program.confirmed", began - 10 * clock.SECOND, subject, compact({
        "mode": "auto", "medication": program.drug.medication(),
        "rate": qty(program.rate, "mL/h"), "library_mode": "library",
        "request_id": program.request_id, "concentration": program.concentration(),
        "dose": program.dose_qty(), "vtbi": qty(program.vtbi, "mL"),
        "dosing_weight": qty(program.weight, "kg") if program.weight is not None else None,
        "care_area": program.care_area, "library_version": sim.config.library_version,
        "library_entry_id": program.drug.entry,
    }), GATEWAY, pump=pump, actor=nurse, backfill=True)
    source = Source(sim.ids.number(), channel, patient, order, program, "primary")
    started = emit("infusion.started", began, subject, compact({
        "rate": qty(program.rate, "mL/h"), "dose_rate": program.dose_qty(),
        "vtbi": qty(program.vtbi, "mL")}), GATEWAY, pump=pump, backfill=True)
    charted = began + rng.randint(5, 14) * clock.MINUTE
    emit("documentation.validated", charted, order.subject() | {
        "pump_id": pump.pump_id, "channel": channel.label}, compact({
        "observed_at": started.occurred_at, "rate": qty(program.rate, "mL/h"),
        "dose_rate": program.dose_qty(), "source_event_ids": [started.event_id]}),
         EHR, actor=nurse, backfill=True)
    elapsed = Decimal(start - began)
    source.vol_base = program.rate * elapsed / Decimal(clock.HOUR)
    source.rate, source.dose = program.rate, program.dose
    source.t_base, source.started_ms = start, began
    source.changes.append((began, "start"))
    source.last_ref = started
    channel.primary = source
    order.sources.append(source)
    order.started = True
    sim.lifecycle.adopt(source)
