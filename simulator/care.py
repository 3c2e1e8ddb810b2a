"""Running the orders: when infusions start, what happens when a bag runs out, stopping.

Continuous orders start 0-10 min after their ``start_at`` (R25 is armed for 60 min), get a
new bag after each VTBI completion (via KVO and its alarm: R24 when the nurse takes over
30 min), and are stopped within 12 min of a discontinue (R09 grace: 15 min) unless the
injected error keeps them running. Intermittent orders give a dose every 6 or 12 h, as a
piggyback when a primary fluid runs on one of the patient's channels. Routine activity
while an infusion runs (pauses, titrations...) lives in :mod:`simulator.routines`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator import clock, orders
from simulator.alarms import SPECS
from simulator.checks import subjects_of
from simulator.errors import ErrorKind
from simulator.events import GATEWAY, qty
from simulator.medications import FLUIDS
from simulator.programming import Plan

if TYPE_CHECKING:
    from simulator.ders import Verdict
    from simulator.hospital import Channel, Patient
    from simulator.infusions import Source
    from simulator.orders import Order
    from simulator.simulation import Simulation

R24_MS = 30 * clock.MINUTE
R25_MS = 60 * clock.MINUTE
R09_MS = 15 * clock.MINUTE


class Care:
    def __init__(self, sim: Simulation):
        self.sim = sim

    # -- orders -------------------------------------------------------------------------
    def new_order(self, order: Order) -> None:
        sim = self.sim
        ref = orders.place(sim, order)
        if order.continuous:
            injection = order.injection if order.injection is not None and (
                order.injection.kind == ErrorKind.ORDERED_NOT_RUNNING) else None
            order.start_watch = sim.truth.watch(
                "R25", "ordered_not_running", ref, order.subjects(), order.start_ms + R25_MS,
                injection=injection, detail=order.drug.name)
        delay = sim.rng.randint(0, 10) * clock.MINUTE
        if order.injection is not None and order.injection.kind == ErrorKind.ORDERED_NOT_RUNNING:
            delay = sim.rng.randint(75, 180) * clock.MINUTE
        sim.engine.call_at(order.start_ms + delay, self.start, order)
        sim.engine.call_at(order.stop_ms, self.discontinue, order)

    def start(self, order: Order) -> None:
        """Begin one administration of ``order`` (a bag, or one intermittent dose)."""
        sim = self.sim
        if not order.active:
            return
        patient = order.patient
        if any(s.state != "stopped" for s in order.sources) and order.drug.interval_h is None:
            return
        if order.drug.secondary:
            carrier = self._carrier(patient)
            if carrier is not None:
                self._program(Plan(carrier, patient, order, role="secondary"))
                self._next_dose(order)
                return
        target, plan_kind = patient, None
        if sim.dice.roll(ErrorKind.WRONG_PATIENT):
            other = self._other_patient(patient)
            if other is not None:
                target, plan_kind = other, ErrorKind.WRONG_PATIENT
        channel = sim.hospital.free_channel(target, sim.rng)
        if channel is None:
            sim.engine.call_after(10 * clock.MINUTE, self.start, order)
            return
        plan = Plan(channel, target, order)
        if plan_kind is not None:
            plan.kind, plan.manual = plan_kind, True
            plan.injection = sim.truth.inject(
                plan_kind, sim.engine.now, sim.programming.who(plan),
                f"{order.drug.name} hung for {target.patient_id}")
        self._program(plan)
        self._next_dose(order)

    def _program(self, plan: Plan) -> None:
        plan.channel.busy = True
        self.sim.programming.choose_mistake(plan)
        self.sim.engine.spawn(self.sim.programming.run(plan))

    def _next_dose(self, order: Order) -> None:
        if order.drug.interval_h is not None:
            self.sim.engine.call_after(order.drug.interval_h * clock.HOUR, self.start, order)

    def _carrier(self, patient: Patient) -> Channel | None:
        for source in self.sim.sources.values():
            channel = source.channel
            if (source.patient is patient and source.role == "primary"
                    and channel.patient is patient
                    and source.program.drug.key in FLUIDS and source.state == "infusing"
                    and channel.secondary is None and not channel.busy):
                return channel
        return None

    def _other_patient(self, patient: Patient) -> Patient | None:
        others = [p for p in self.sim.hospital.patients
                  if p.unit is patient.unit and p is not patient]
        return self.sim.rng.choice(others) if others else None

    def secondary_blocked(self, plan: Plan) -> None:
        if plan.order is not None:
            self.sim.engine.call_after(10 * clock.MINUTE, self._retry_dose, plan.order)

    def _retry_dose(self, order: Order) -> None:
        if order.active and not any(s.state != "stopped" for s in order.sources):
            order_interval = order.drug.interval_h
            if order_interval is None:
                self.start(order)
                return
            channel = self._carrier(order.patient)
            plan = (Plan(channel, order.patient, order, role="secondary") if channel
                    else None)
            if plan is None:
                free = self.sim.hospital.free_channel(order.patient, self.sim.rng)
                if free is None:
                    return
                plan = Plan(free, order.patient, order)
            self._program(plan)

    def after_cancel(self, order: Order, verdict: Verdict) -> None:
        """The nurse refused an order above the soft limit: the prescriber lowers it."""
        self.sim.engine.call_after(self.sim.rng.randint(10, 30) * clock.MINUTE,
                                   self._lower, order, verdict)

    def _lower(self, order: Order, verdict: Verdict) -> None:
        if not order.active or order.dose is None or order.dose_unit is None:
            return
        order.dose = verdict.limit
        orders.modify(self.sim, order, {"dose": qty(order.dose, order.dose_unit)},
                      "dose above the library limit")
        self.start(order)

    # -- completion and stop --------------------------------------------------------------
    def on_complete(self, source: Source) -> None:
        sim = self.sim
        if source.role != "primary":
            sim.lifecycle.release(source)
            primary = source.channel.primary
            if primary is not None and primary.state == "paused":
                sim.lifecycle.resume(primary)
            elif primary is None:
                self._disassociate(source.channel)  # its primary was stopped meanwhile
            return
        source.reminder = sim.alarms.raise_alarm(SPECS["kvo"], source.channel.pump,
                                                 source.channel, source)
        order = source.order
        if order is not None and order.active:
            source.state_watch = sim.truth.watch(
                "R24", "kvo_too_long", source.last_ref or source.reminder.raised,
                subjects_of(source), sim.engine.now + R24_MS, detail=source.program.drug.name)
        median = math.log(sim.config.activity.kvo_response_median)
        delay = clock.minutes(min(240.0, sim.rng.lognormvariate(median, 0.9)))
        sim.engine.call_after(delay, self._after_kvo, source, source.gen)

    def _after_kvo(self, source: Source, gen: int) -> None:
        if gen != source.gen or source.state != "kvo":
            return
        order = source.order
        if (order is not None and order.active and order.continuous
                and source.channel.patient is order.patient and order.drug.interval_h is None):
            self.replace_bag(source)
            return
        self.finish(source, "infusion complete")
        one_off = order is not None and not order.continuous and not order.drug.interval_h
        if order is not None and order.active and one_off:
            orders.end(self.sim, order, "completed", "administered")

    def replace_bag(self, source: Source) -> None:
        """Stop ``source`` and hang the next bag of its order on the same channel."""
        order = source.order
        if order is None:
            return
        channel = source.channel
        self.finish(source, "bag replaced", keep=True)
        self._program(Plan(channel, order.patient, order))

    def finish(self, source: Source, reason: str, *, keep: bool = False) -> None:
        """Stop ``source``, clear the program, and free the channel unless ``keep``."""
        sim = self.sim
        if source.state == "stopped":
            return
        channel = source.channel
        sim.alarms.clear(source.alarm)
        sim.alarms.clear(source.reminder)
        source.alarm = source.reminder = None
        sim.lifecycle.stop(source, reason)
        for watch in source.stop_watches:
            watch.satisfy(sim.engine.now)
        sim.emitter.emit("program.cleared", sim.engine.now, source.subject(), {}, GATEWAY,
                         pump=channel.pump)
        if source.role == "secondary" and channel.primary is not None:
            if channel.primary.state == "paused":
                sim.lifecycle.resume(channel.primary)
            return
        if keep:
            channel.busy = True
            return
        self._disassociate(channel)

    def release_channel(self, channel: Channel) -> None:
        """Unbind an unused channel from its patient."""
        if not channel.busy:
            self._disassociate(channel)

    def _disassociate(self, channel: Channel) -> None:
        if channel.primary is None and channel.secondary is None and channel.patient is not None:
            self.sim.emitter.emit("pump.disassociated", self.sim.engine.now,
                                  {"pump_id": channel.pump.pump_id, "channel": channel.label,
                                   "patient_id": channel.patient.patient_id},
                                  {"method": "scan"}, GATEWAY, pump=channel.pump)
            channel.patient = None

    def discontinue(self, order: Order) -> None:
        sim = self.sim
        if not order.active:
            return
        running = [s for s in order.sources if s.state != "stopped"]
        ref = orders.end(sim, order, "discontinued", "therapy complete")
        if order.start_watch is not None:
            order.start_watch.satisfy(sim.engine.now)
        for source in running:
            if source.state_watch is not None:
                source.state_watch.satisfy(sim.engine.now)
            delay = sim.rng.randint(1, int(sim.config.activity.discontinue_stop_delay_max))
            injection = None
            if source.flowing and sim.dice.roll(ErrorKind.RUNNING_AFTER_DISCONTINUE):
                injection = sim.truth.inject(ErrorKind.RUNNING_AFTER_DISCONTINUE,
                                             sim.engine.now, subjects_of(source),
                                             order.drug.name)
                delay = sim.rng.randint(30, 180)
            if source.flowing:
                source.stop_watches.append(sim.truth.watch(
                    "R09", "running_after_discontinue", ref, subjects_of(source),
                    ref.at_ms + R09_MS, injection=injection, detail=order.drug.name))
            sim.engine.call_after(delay * clock.MINUTE, self.finish, source, "order discontinued")

    def on_started(self, source: Source, plan: Plan) -> None:
        self.sim.routines.on_started(source, plan)
