"""Pump alarms (PCD-04 style): what raises them, who answers, when they clear.

Calibrated to a 29-hospital study (11,410 pumps, 60 days): 1.44 alarms per pump per day,
KVO 33.8 %, hold expired 27.2 %, downstream occlusion 22.9 %, the rest air-in-line,
upstream occlusion, door and battery; 60 % answered within 68 s, mean 2 min 38 s, hence a
log-normal response time. Occlusion, air and door alarms stop delivery (``infusion.paused``
reason ``alarm``) until the nurse fixes the line; KVO and hold-expired alarms are raised by
:mod:`simulator.care` and cleared when the nurse acts on the channel.

Deadline rules armed here: R22 (high: 2 min, medium: 10 min without silence, acknowledge
or clear) and R23 (delivery stopped by an alarm, no resume/stop within 5 min for a
vasoactive drug, 30 min otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator import clock
from simulator.checks import subjects_of
from simulator.errors import ErrorKind
from simulator.events import GATEWAY, Ref
from simulator.truth import Subjects

if TYPE_CHECKING:
    from simulator.hospital import Channel, Pump
    from simulator.infusions import Source
    from simulator.simulation import Simulation
    from simulator.truth import Injection, Watch


@dataclass(frozen=True)
class Spec:
    key: str
    code: str
    text: str
    priority: str
    kind: str
    stops: bool


SPECS = {
    s.key: s
    for s in (
        Spec("occlusion", "MDC_EVT_FLUID_LINE_OCCL", "Occlusion downstream", "high", "technical",
             True),
        Spec("upstream", "MDC_EVT_FLUID_LINE_OCCL_PROXIMAL", "Occlusion upstream", "high",
             "technical", True),
        Spec("air", "MDC_EVT_FLUID_LINE_AIR", "Air in line", "high", "technical", True),
        Spec("door", "MDC_EVT_STAT_DOOR_OPEN", "Door open", "medium", "technical", True),
        Spec("kvo", "MDC_EVT_PUMP_DELIV_COMP", "Infusion complete - KVO", "medium", "advisory",
             False),
        Spec("hold", "MDC_EVT_TIMEOUT", "Channel paused - hold expired", "low", "advisory", False),
        Spec("battery", "MDC_EVT_BATT_LO", "Battery low", "low", "technical", False),
    )
}
R22_MS = {"high": 2 * clock.MINUTE, "medium": 10 * clock.MINUTE}


@dataclass(eq=False)
class Alarm:
    alarm_id: str
    spec: Spec
    pump: Pump
    subject: dict[str, str]
    raised: Ref
    answer_ms: int = 0
    watch: Watch | None = None
    answered: bool = False
    cleared: bool = False


class Alarms:
    def __init__(self, sim: Simulation):
        self.sim = sim
        activity = sim.config.activity
        self.hazards = (
            ("occlusion", activity.occlusions_per_infusing_hour),
            ("air", activity.air_in_line_per_infusing_hour),
            ("upstream", activity.upstream_occlusions_per_infusing_hour),
            ("door", activity.door_open_per_infusing_hour),
        )
        self.hazard_rate = sum(rate for _key, rate in self.hazards)
        self.counts: dict[str, int] = {key: 0 for key in SPECS}

    # -- raising and answering ------------------------------------------------------------
    def raise_alarm(self, spec: Spec, pump: Pump, channel: Channel | None, source: Source | None,
                    injection: Injection | None = None) -> Alarm:
        sim = self.sim
        subject = {"pump_id": pump.pump_id, "alarm_id": pump.next_alarm_id()}
        who = Subjects(pump_id=pump.pump_id)
        if channel is not None:
            subject["channel"] = channel.label
        if source is not None:
            subject.update({k: v for k, v in source.subject().items() if k not in subject})
            who = subjects_of(source)
        ref = sim.emitter.emit("alarm.raised", sim.engine.now, subject, {
            "code": spec.code, "priority": spec.priority, "text": spec.text, "kind": spec.kind,
        }, GATEWAY, pump=pump)
        self.counts[spec.key] += 1
        alarm = Alarm(subject["alarm_id"], spec, pump, subject, ref)
        if spec.priority == "high" and injection is None and sim.dice.roll(
            ErrorKind.UNACKNOWLEDGED_ALARM
        ):
            injection = sim.truth.inject(ErrorKind.UNACKNOWLEDGED_ALARM, ref.at_ms, who,
                                         spec.text)
        if spec.priority in R22_MS:
            alarm.watch = sim.truth.watch(
                "R22", f"slow_{spec.priority}_alarm_response", ref, who,
                ref.at_ms + R22_MS[spec.priority], injection=injection,
                detail=f"{spec.code} {spec.priority}")
        alarm.answer_ms = self.response_ms(spec.priority, injection is not None)
        sim.engine.call_after(alarm.answer_ms, self._answer, alarm)
        return alarm

    def response_ms(self, priority: str, unanswered: bool) -> int:
        sim, activity = self.sim, self.sim.config.activity
        if unanswered:
            return sim.rng.randint(4 * 60, 15 * 60) * clock.SECOND
        median = {"high": activity.high_alarm_response_median_s,
                  "medium": activity.medium_alarm_response_median_s}.get(
            priority, activity.low_alarm_response_median_s)
        value = sim.rng.lognormvariate(math.log(median), activity.alarm_response_sigma)
        return clock.seconds(min(value, 45 * 60.0))

    def _answer(self, alarm: Alarm) -> None:
        if alarm.cleared or alarm.answered:
            return
        sim = self.sim
        alarm.answered = True
        if alarm.watch is not None:
            alarm.watch.satisfy(sim.engine.now)
        if sim.rng.random() < 0.5:
            sim.emitter.emit("alarm.silenced", sim.engine.now, alarm.subject, {}, GATEWAY,
                             pump=alarm.pump)
            sim.engine.call_after(sim.rng.randint(3, 25) * clock.SECOND, self._acknowledge, alarm)
        else:
            self._acknowledge(alarm)

    def _acknowledge(self, alarm: Alarm) -> None:
        if alarm.cleared:
            return
        self.sim.emitter.emit("alarm.acknowledged", self.sim.engine.now, alarm.subject, {},
                              GATEWAY, pump=alarm.pump)

    def clear(self, alarm: Alarm | None) -> None:
        if alarm is None or alarm.cleared:
            return
        alarm.cleared = True
        if alarm.watch is not None:
            alarm.watch.satisfy(self.sim.engine.now)
        self.sim.emitter.emit("alarm.cleared", self.sim.engine.now, alarm.subject, {}, GATEWAY,
                              pump=alarm.pump)

    # -- hazards that stop delivery ---------------------------------------------------------
    def arm(self, source: Source) -> None:
        if source.state != "infusing" or self.hazard_rate <= 0:
            return
        delay = self.sim.rng.expovariate(self.hazard_rate / clock.HOUR)
        self.sim.engine.call_after(int(delay), self._hazard, source, source.gen)

    def _hazard(self, source: Source, gen: int) -> None:
        if gen != source.gen or source.state != "infusing" or source.channel.busy:
            return
        pick = self.sim.rng.random() * self.hazard_rate
        chosen = self.hazards[-1][0]
        for key, rate in self.hazards:
            pick -= rate
            if pick < 0:
                chosen = key
                break
        self.sim.engine.spawn(self._stopping(source, SPECS[chosen]))

    def _stopping(self, source: Source, spec: Spec) -> Generator[int, None, None]:
        sim = self.sim
        paused = sim.lifecycle.pause(source, "alarm")
        vasoactive = source.program.drug.vasoactive
        window = (5 if vasoactive else 30) * clock.MINUTE
        r23 = sim.truth.watch("R23", "prolonged_stop_after_alarm", paused, subjects_of(source),
                              paused.at_ms + window,
                              detail=f"{spec.code} on {source.program.drug.name}")
        source.stop_watches.append(r23)
        alarm = self.raise_alarm(spec, source.channel.pump, source.channel, source)
        source.alarm = alarm
        gen = source.gen
        fix_median = math.log(sim.config.activity.alarm_fix_median_s)
        total = alarm.answer_ms + clock.seconds(sim.rng.lognormvariate(fix_median, 0.8))
        if alarm.watch is not None and alarm.watch.injection is not None:
            r23.injection = alarm.watch.injection
        if not vasoactive:
            total = min(total, 25 * clock.MINUTE)
        yield total
        if gen != source.gen or source.state != "alarm":
            return
        self.clear(alarm)
        source.alarm = None
        sim.lifecycle.resume(source)
        r23.satisfy(sim.engine.now)

    # -- pump-level -------------------------------------------------------------------------
    def start_battery(self) -> None:
        rate = self.sim.config.activity.battery_low_per_pump_day
        if rate <= 0:
            return
        for pump in self.sim.hospital.pumps:
            self.sim.engine.call_after(int(self.sim.rng.expovariate(rate / clock.DAY)),
                                       self._battery, pump)

    def _battery(self, pump: Pump) -> None:
        sim = self.sim
        rate = sim.config.activity.battery_low_per_pump_day
        sim.engine.call_after(int(sim.rng.expovariate(rate / clock.DAY)), self._battery, pump)
        if pump.gap_until_ms > sim.engine.now:
            return
        alarm = self.raise_alarm(SPECS["battery"], pump, None, None)
        sim.engine.call_after(sim.rng.randint(20, 90) * clock.MINUTE, self.clear, alarm)
