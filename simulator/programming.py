"""The bedside start, step by step: scan, associate, program (auto or manual), DERS, start.

One process per new bag or piggyback dose. With an interoperable pump (all of them here)
the BCMA auto-programs most starts (PCD-03 ``program.auto_requested`` -> accepted or
rejected); the rest are keyed in by hand (R11). The library checks the program; alerts
end in override (R13), reprogram or cancel. Programming errors are injected here, and the
conditions are then read off what the pump actually runs (:mod:`simulator.checks`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from simulator import clock, ders, programs
from simulator.checks import check_start
from simulator.errors import MANUAL_PROGRAMMING_KINDS, ErrorKind
from simulator.events import BCMA, GATEWAY, Ref, compact, qty
from simulator.infusions import Program, Source
from simulator.truth import Subjects

if TYPE_CHECKING:
    from simulator.hospital import Channel, Patient
    from simulator.orders import Order
    from simulator.simulation import Simulation
    from simulator.truth import Injection

K = ErrorKind
ORDER_LEVEL = (K.SOFT_LIMIT_OVERRIDE, K.FAST_OVERRIDE, K.HARD_LIMIT_THEN_BASIC)


@dataclass
class Plan:
    """How this start will go: who, where, which mistakes."""

    channel: Channel
    patient: Patient  # the patient the channel is (or will be) associated with
    order: Order | None
    role: str = "primary"
    drug_program: Program | None = None  # for starts without an order
    injection: Injection | None = None
    kind: ErrorKind | None = None
    manual: bool = False
    done: list[Source] = field(default_factory=list)


class Programming:
    def __init__(self, sim: Simulation):
        self.sim = sim

    def choose_mistake(self, plan: Plan) -> None:
        """Roll every programming-time kind (always, to keep the dice aligned)."""
        sim, order = self.sim, plan.order
        kinds = (*MANUAL_PROGRAMMING_KINDS, K.MANUAL_EDIT_AFTER_AUTO)
        hits = [k for k in kinds if sim.dice.roll(k)]
        if order is None or plan.kind is not None:
            return
        if order.injection is not None and order.injection.kind in ORDER_LEVEL:
            plan.kind, plan.injection = K(order.injection.kind), order.injection
            plan.manual = plan.kind is K.HARD_LIMIT_THEN_BASIC
            return
        for kind in hits:
            if kind is K.MANUAL_EDIT_AFTER_AUTO or programs.applicable(kind, order, plan.patient):
                plan.kind = kind
                plan.manual = kind is not K.MANUAL_EDIT_AFTER_AUTO
                plan.injection = sim.truth.inject(kind, sim.engine.now, self.who(plan),
                                                  order.drug.name)
                return

    def run(self, plan: Plan) -> Generator[int, None, None]:
        sim, channel, order = self.sim, plan.channel, plan.order
        channel.busy = True
        pump = channel.pump
        nurse = {"id": sim.ids.staff("RN", plan.patient.unit.code), "role": "nurse"}
        yield from self._scan(plan, nurse)
        if channel.patient is not plan.patient:
            channel.patient = plan.patient
            sim.emitter.emit("pump.associated", sim.engine.now,
                             {"pump_id": pump.pump_id, "channel": channel.label,
                              "patient_id": plan.patient.patient_id},
                             {"method": "scan"}, GATEWAY, pump=pump, actor=nurse)
        yield sim.rng.randint(5, 20) * clock.SECOND
        care_area = plan.patient.unit.care_area
        if order is not None:
            base = programs.from_order(order, care_area, plan.role)
        elif plan.drug_program is not None:
            base = plan.drug_program
        else:
            channel.busy = False
            return
        if not plan.manual and plan.kind is None and order is None:
            plan.manual = True
        chance = sim.rng.random() < sim.config.activity.auto_program_share
        edit = plan.kind is K.MANUAL_EDIT_AFTER_AUTO  # needs an auto-program to edit
        auto = order is not None and not plan.manual and (chance or edit)
        requested: Program | None = None
        requested_at: int | None = None
        auto_attempted = False
        program = base
        subject = self._subject(plan)
        if auto and order is not None:
            auto_attempted = True
            request_id = sim.ids.next("REQ")
            requested_at = sim.engine.now
            sim.emitter.emit("program.auto_requested", sim.engine.now, subject, compact({
                "request_id": request_id, "medication": base.drug.medication(),
                "concentration": base.concentration(), "dose": base.dose_qty(),
                "rate": qty(base.rate, "mL/h"), "vtbi": qty(base.vtbi, "mL"),
                "dosing_weight": qty(base.weight, "kg") if base.weight is not None else None,
            }), BCMA, pump=pump, actor=nurse)
            yield sim.rng.randint(1, 3) * clock.SECOND
            if sim.rng.random() < sim.config.activity.auto_program_reject_share:
                sim.emitter.emit("program.auto_rejected", sim.engine.now, subject, {
                    "request_id": request_id, "reason_code": "AE",
                    "reason_text": "unable to match medication to drug library"},
                    GATEWAY, pump=pump)
            else:
                sim.emitter.emit("program.auto_accepted", sim.engine.now, subject,
                                 {"request_id": request_id}, GATEWAY, pump=pump)
                requested = base
                program = replace(base, mode="auto", request_id=request_id)
                if plan.kind is K.MANUAL_EDIT_AFTER_AUTO:
                    program = programs.edited_after_auto(program, sim.rng)
        elif plan.kind in MANUAL_PROGRAMMING_KINDS:
            program = self._mistake(plan, base)
        outcome = yield from self._library(plan, program, base)
        if outcome is None:
            channel.busy = False
            return
        program, hard_alert = outcome
        yield from self._confirm_and_start(plan, program, subject, nurse, requested,
                                           requested_at, auto_attempted, hard_alert)

    def _mistake(self, plan: Plan, base: Program) -> Program:
        if plan.kind is K.DECIMAL_ERROR:
            up = programs.mistake(K.DECIMAL_ERROR, base, self.sim.rng, upward=True)
            verdict = ders.check(up)
            if verdict is not None and verdict.limit_kind == "hard":
                down = programs.mistake(K.DECIMAL_ERROR, base, self.sim.rng, upward=False)
                down_verdict = ders.check(down)
                if down_verdict is None or down_verdict.limit_kind == "soft":
                    return down
            return up
        if plan.kind is None:
            return base
        return programs.mistake(plan.kind, base, self.sim.rng)

    def _scan(self, plan: Plan, nurse: dict[str, str]) -> Generator[int, None, None]:
        sim = self.sim
        patient, order = plan.patient, plan.order
        wrong_patient = order is not None and order.patient is not patient
        scans = [("patient", patient.patient_id, "override" if wrong_patient else "match")]
        if order is not None:
            drug = order.drug if plan.kind is not K.WRONG_DRUG else None
            code = drug.code if drug is not None else order.drug.lookalike or order.drug.code
            scans.append(("medication", code, "match" if drug is not None else "override"))
        elif plan.drug_program is not None:
            scans.append(("medication", plan.drug_program.drug.code, "override"))
        scans.append(("pump_channel", f"{plan.channel.pump.pump_id}-{plan.channel.label}",
                      "match"))
        for scan_type, value, result in scans:
            subject = {"patient_id": patient.patient_id}
            if order is not None:
                subject["order_id"] = order.order_id
            sim.emitter.emit("bcma.scan_recorded", sim.engine.now, subject,
                             {"scan_type": scan_type, "value": value, "result": result},
                             BCMA, actor=nurse)
            yield sim.rng.randint(3, 9) * clock.SECOND

    def _subject(self, plan: Plan) -> dict[str, str]:
        subject = {"pump_id": plan.channel.pump.pump_id, "channel": plan.channel.label,
                   "patient_id": plan.patient.patient_id}
        if plan.order is not None:
            subject["order_id"] = plan.order.order_id
        return subject

    def _alert(self, plan: Plan, program: Program, verdict: ders.Verdict, outcome: str,
               fast: bool, injection: Injection | None) -> Generator[int, None, Ref]:
        sim = self.sim
        if outcome == "overridden":
            seconds = ders.override_seconds(sim, fast)
        else:
            seconds = ders.override_seconds(sim, False) + sim.rng.randint(3, 30)
        raised, _resolved = yield from ders.alert(
            sim, self._subject(plan), self.who(plan), plan.channel.pump, program, verdict,
            outcome, seconds, injection)
        return raised

    def who(self, plan: Plan) -> Subjects:
        return Subjects(patient_id=plan.patient.patient_id,
                        order_id=plan.order.order_id if plan.order else None,
                        pump_id=plan.channel.pump.pump_id, channel=plan.channel.label)

    def _library(self, plan: Plan, program: Program, base: Program
                 ) -> Generator[int, None, tuple[Program, Ref | None] | None]:
        """Run the library checks until the program passes; None when the nurse gives up."""
        sim, activity = self.sim, self.sim.config.activity
        keyed = (program.mode == "manual" and plan.kind is None
                 and program.library_mode == "library")
        if keyed and sim.rng.random() < activity.keystroke_alert_share:
            factor = Decimal(sim.rng.choice(("10", "10", "2", "1.5")))
            slip = programs.typo(program, factor)
            verdict = ders.check(slip)
            if verdict is not None:
                outcome = "reprogrammed" if sim.rng.random() < 0.9 else "cancelled"
                yield from self._alert(plan, slip, verdict, outcome, False, None)
                yield sim.rng.randint(10, 40) * clock.SECOND
        injected = plan.kind is not None and plan.kind not in ORDER_LEVEL
        hard_alert: Ref | None = None
        for _attempt in range(3):
            verdict = ders.check(program)
            if verdict is None:
                return program, hard_alert
            if verdict.limit_kind == "hard":
                if plan.kind is K.HARD_LIMIT_THEN_BASIC:
                    hard_alert = yield from self._alert(plan, program, verdict, "cancelled",
                                                        False, plan.injection)
                    yield sim.rng.randint(60, 300) * clock.SECOND
                    return programs.basic(program), hard_alert
                yield from self._alert(plan, program, verdict, "reprogrammed", False, None)
                if program is base:
                    return None
                if plan.injection is not None:
                    plan.injection.detail += "; caught by a hard limit"
                program, injected = base, False
                yield sim.rng.randint(10, 40) * clock.SECOND
                continue
            fast_share = activity.fast_override_share
            if plan.kind in (K.SOFT_LIMIT_OVERRIDE, K.FAST_OVERRIDE) or injected:
                fast = plan.kind is K.FAST_OVERRIDE or (
                    plan.kind is not K.SOFT_LIMIT_OVERRIDE and sim.rng.random() < fast_share)
                yield from self._alert(plan, program, verdict, "overridden", fast, plan.injection)
                return program, hard_alert
            if sim.rng.random() < activity.override_share_beyond_soft:
                fast = sim.rng.random() < fast_share
                yield from self._alert(plan, program, verdict, "overridden", fast, None)
                return program, hard_alert
            yield from self._alert(plan, program, verdict, "cancelled", False, None)
            if plan.order is not None:
                sim.care.after_cancel(plan.order, verdict)
            return None
        return None

    def _confirm_and_start(
        self, plan: Plan, program: Program, subject: dict[str, str], nurse: dict[str, str],
        requested: Program | None, requested_at: int | None, auto_attempted: bool,
        hard_alert: Ref | None,
    ) -> Generator[int, None, None]:
        sim, channel, order = self.sim, plan.channel, plan.order
        pump = channel.pump
        yield sim.rng.randint(10, 60) * clock.SECOND
        if order is not None and not order.active:
            channel.busy = False  # discontinued while the nurse was programming: not started
            sim.care.release_channel(channel)
            return
        library = program.library_mode == "library"
        confirmed = sim.emitter.emit("program.confirmed", sim.engine.now, subject, compact({
            "mode": program.mode, "medication": program.drug.medication(),
            "rate": qty(program.rate, "mL/h"), "library_mode": program.library_mode,
            "request_id": program.request_id, "concentration": program.concentration(),
            "dose": program.dose_qty(), "vtbi": qty(program.vtbi, "mL"),
            "dosing_weight": qty(program.weight, "kg") if program.weight is not None else None,
            "care_area": program.care_area, "library_version": sim.config.library_version,
            "library_entry_id": program.drug.entry if library else None,
            "infusate_source": plan.role if plan.role != "primary" else None,
        }), GATEWAY, pump=pump, actor=nurse)
        yield sim.rng.randint(2, 8) * clock.SECOND
        source = Source(sim.ids.number(), channel, plan.patient, order, program, plan.role,
                        injection=plan.injection)
        if plan.role == "secondary":
            primary = channel.primary
            if primary is None or primary.state != "infusing" or channel.secondary is not None:
                sim.emitter.emit("program.cleared", sim.engine.now, subject, {}, GATEWAY, pump=pump)
                channel.busy = False
                sim.care.secondary_blocked(plan)
                return
            sim.lifecycle.pause(primary, "switching_source")
            channel.secondary = source
        else:
            channel.primary = source
        started = sim.lifecycle.start(source)
        channel.busy = False
        check_start(sim, source, confirmed, started, requested=requested,
                    requested_ms=requested_at, auto_attempted=auto_attempted,
                    hard_alert=hard_alert, injection=plan.injection)
        if order is not None:
            order.sources.append(source)
            order.started = True
            if order.start_watch is not None:
                order.start_watch.satisfy(sim.engine.now)
        sim.documentation.on_event(source, started, "start")
        sim.care.on_started(source, plan)
        plan.done.append(source)
