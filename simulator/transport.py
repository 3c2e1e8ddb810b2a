"""Transport faults: skewed pump clocks, communication gaps, delays, duplicates, garbage.

* **Clock skew** (R30): a pump's clock falls 6-30 min behind for 1-4 h, then is corrected
  with ``pump.clock_changed``. One condition at the first event whose ``received_at`` is
  more than 5 min after its ``occurred_at``, one at the correction. While skewed, every
  other rule on that pump is *don't care*.
* **Late data** (R30): the pump's link drops for 8-40 min (``pump.communication_changed``);
  its events are buffered and arrive at reconnection with their original ``occurred_at``
  (IHE PCD-10). One condition per gap; timing rules on the pump are don't care meanwhile.
* **Out of order**: single events delayed 15-240 s (< 5 min: no rule fires).
* **Duplicates**: the same event (same id and content) sent again later, with a new
  ``source.message_id`` and ``received_at`` — absorbed by the ledger; counted only.
* **Malformed** lines (bad JSON, naive timestamp, wrong unit dimension, missing required
  field) with their own ids, next to the good event; dead-lettered; counted only.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from typing import TYPE_CHECKING, Any

from simulator import clock
from simulator.errors import ErrorKind
from simulator.events import Line, Ref, Src, to_json
from simulator.truth import TIMING_RULES, Subjects

if TYPE_CHECKING:
    from simulator.hospital import Pump
    from simulator.simulation import Simulation

LATE_MS = 5 * clock.MINUTE
MALFORMED_KINDS = ("bad_json", "naive_timestamp", "wrong_unit_dimension", "missing_required_field")


class Faults:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.rng = sim.transport_rng  # per-event faults
        self.episodes = random.Random(f"{sim.config.seed}:episodes")  # skew and gap plans
        self.dice = sim.dice
        self._skew_first: dict[str, Any] = {}  # pump_id -> injection awaiting its first late event
        self._gap_seq: dict[str, int] = {}
        self._malformed_ns = uuid.uuid5(uuid.NAMESPACE_URL, f"sim-malformed:{sim.run_key}")
        self.p_dup = self.dice.rates[ErrorKind.DUPLICATE_DELIVERY]
        self.p_late = self.dice.rates[ErrorKind.OUT_OF_ORDER]
        self.p_bad = self.dice.rates[ErrorKind.MALFORMED]

    # -- arrival time ---------------------------------------------------------------------
    def arrival(self, ref: Ref, pump: Pump | None, occurred_ms: int, received_ms: int) -> int:
        at_ms = ref.at_ms
        if ref.type == "pump.communication_changed":
            return received_ms
        if pump is not None and pump.gap_from_ms <= at_ms < pump.gap_until_ms:
            seq = self._gap_seq.get(pump.pump_id, 0) + 1
            self._gap_seq[pump.pump_id] = seq
            received_ms = pump.gap_until_ms + 20 * seq
        elif self.rng.random() < self.p_late:
            received_ms += self.rng.randint(15, 240) * clock.SECOND
            self.sim.truth.out_of_order.append(ref.event_id)
        if pump is not None:
            pending = self._skew_first.get(pump.pump_id)
            if pending is not None and received_ms - occurred_ms > LATE_MS:
                del self._skew_first[pump.pump_id]
                self.sim.truth.add("R30", "clock_skew", ref, pending.subjects, injection=pending,
                                   detail="received_at - occurred_at > 5 min")
        return received_ms

    def after_emit(self, line: Line, event_id: str, key: str, received_ms: int, src: Src) -> None:
        emitter = self.sim.emitter
        if self.p_dup and self.rng.random() < self.p_dup:
            again_ms = received_ms + self.rng.randint(1, 90) * clock.SECOND
            emitter.output.push(again_ms, key,
                                line.render(clock.fmt(again_ms), emitter.message_id(src)))
            self.sim.truth.duplicates.append(event_id)
        if self.p_bad and self.rng.random() < self.p_bad:
            original = json.loads(line.render(clock.fmt(received_ms), emitter.message_id(src)))
            self._malformed(original, key, received_ms)

    def _malformed(self, envelope: dict[str, Any], key: str, received_ms: int) -> None:
        truth = self.sim.truth
        bad = copy.deepcopy(envelope)
        bad["event_id"] = str(uuid.uuid5(self._malformed_ns, str(len(truth.malformed) + 1)))
        kind = MALFORMED_KINDS[self.rng.randrange(len(MALFORMED_KINDS))]
        quantities = [k for k, v in bad["data"].items() if isinstance(v, dict) and "unit" in v]
        if kind == "wrong_unit_dimension" and not quantities:
            kind = "missing_required_field"
        if kind == "naive_timestamp":
            bad["occurred_at"] = bad["occurred_at"][:23]
        elif kind == "wrong_unit_dimension":
            field = quantities[0]
            bad["data"][field] = {**bad["data"][field], "unit": "min"}
        elif kind == "missing_required_field":
            del bad["occurred_at"]
        line = to_json(bad).encode()
        if kind == "bad_json":
            line = line[: self.rng.randint(10, len(line) - 2)]
        at_ms = received_ms + self.rng.randint(0, 500)
        self.sim.emitter.output.push(at_ms, key, line)
        truth.malformed.append(
            {"kind": kind, "event_id": bad["event_id"], "type": envelope["type"],
             "received_at": clock.fmt(at_ms)}
        )

    # -- episodes -------------------------------------------------------------------------
    def start(self) -> None:
        for pump in self.sim.hospital.pumps:
            delay = self.episodes.randint(0, 59) * clock.MINUTE
            self.sim.engine.call_after(delay, self._hourly, pump)

    def _hourly(self, pump: Pump) -> None:
        self.sim.engine.call_after(clock.HOUR, self._hourly, pump)
        now = self.sim.engine.now
        busy = pump.skew_until_ms > now or pump.gap_until_ms > now
        skew = self.dice.roll(ErrorKind.CLOCK_SKEW)
        late = self.dice.roll(ErrorKind.LATE_DATA)
        if busy or not pump.running():
            return
        if skew:
            self._skew(pump, now)
        elif late:
            self._gap(pump, now)

    def _subjects(self, pump: Pump) -> Subjects:
        return Subjects(pump_id=pump.pump_id)

    def _skew(self, pump: Pump, now: int) -> None:
        pump.skew_ms = -self.episodes.randint(6, 30) * clock.MINUTE
        pump.skew_from_ms = now
        pump.skew_until_ms = now + self.episodes.randint(60, 240) * clock.MINUTE
        injection = self.sim.truth.inject(
            ErrorKind.CLOCK_SKEW, now, self._subjects(pump),
            f"device clock {pump.skew_ms // clock.MINUTE} min until corrected",
        )
        self._skew_first[pump.pump_id] = injection
        self.sim.truth.suppress(pump.pump_id, now - clock.HOUR, pump.skew_until_ms, ("*",),
                                "clock skew episode (R30 suppresses the pump's other rules)")
        self.sim.engine.call_at(pump.skew_until_ms, self._correct, pump, injection)

    def _correct(self, pump: Pump, injection: Any) -> None:
        now = self.sim.engine.now
        before = now + pump.natural_skew_ms + pump.skew_ms
        pump.skew_until_ms = now
        self._skew_first.pop(pump.pump_id, None)
        ref = self.sim.emitter.emit(
            "pump.clock_changed", now, {"pump_id": pump.pump_id},
            {"previous_time": clock.fmt(before), "new_time": clock.fmt(now + pump.natural_skew_ms)},
            self.sim.gateway, pump=pump,
        )
        self.sim.truth.add("R30", "device_time_changed", ref, self._subjects(pump),
                           injection=injection, detail="pump.clock_changed")

    def _gap(self, pump: Pump, now: int) -> None:
        length = self.episodes.randint(8, 40) * clock.MINUTE
        pump.gap_from_ms, pump.gap_until_ms = now, now + length
        self._gap_seq[pump.pump_id] = 0
        subjects = self._subjects(pump)
        injection = self.sim.truth.inject(ErrorKind.LATE_DATA, now, subjects,
                                          f"link down {length // clock.MINUTE} min")
        lost = self.sim.emitter.emit(
            "pump.communication_changed", now, {"pump_id": pump.pump_id}, {"status": "lost"},
            self.sim.gateway, pump=pump,
        )
        self.sim.truth.suppress(pump.pump_id, now, now + length, TIMING_RULES,
                                "communication gap (R30 suppresses timing rules)")
        self.sim.engine.call_at(now + length, self._restore, pump, lost, injection)

    def _restore(self, pump: Pump, lost: Ref, injection: Any) -> None:
        now = self.sim.engine.now
        restored = self.sim.emitter.emit(
            "pump.communication_changed", now, {"pump_id": pump.pump_id},
            {"status": "restored"}, self.sim.gateway, pump=pump,
        )
        self.sim.truth.add("R30", "communication_gap", lost, self._subjects(pump),
                           event_ids=[restored.event_id], injection=injection,
                           detail="buffered events arrive > 5 min late")
