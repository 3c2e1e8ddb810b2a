"""Wiring: one :class:`Simulation` builds the hospital and every actor and runs the engine.

Three independent random streams, all derived from the seed: the *world* (patients,
orders, nurses, alarms), the *error dice* (every injection) and the *transport* (latency,
report phases, duplicates, delays). String seeds are hashed with SHA-512 by
:class:`random.Random`, never with ``hash()``, so ``PYTHONHASHSEED`` cannot change a run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator import clock, hospital, report, warm
from simulator.alarms import Alarms
from simulator.care import Care
from simulator.census import Census
from simulator.documentation import Documentation
from simulator.engine import Engine
from simulator.errors import Dice
from simulator.events import GATEWAY, Emitter, run_key
from simulator.incidents import Incidents
from simulator.infusions import Lifecycle, Source
from simulator.programming import Programming
from simulator.routines import Routines
from simulator.sinks import OrderedOutput
from simulator.telemetry import Telemetry
from simulator.transport import Faults
from simulator.truth import Truth

if TYPE_CHECKING:
    from simulator.config import SimulationConfig
    from simulator.sinks import Sink

FLUSH_MS = 5 * clock.SECOND


class Ids:
    """Readable, deterministic business identifiers (``ORD-000042``) and staff ids."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._counters: dict[str, int] = {}
        self._numbers = 0

    def next(self, prefix: str) -> str:
        value = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = value
        return f"{prefix}-{value:06d}"

    def number(self) -> int:
        self._numbers += 1
        return self._numbers

    def staff(self, role: str, unit: str) -> str:
        return f"{role}-{unit}-{self.rng.randint(1, 14):02d}"


@dataclass
class SimulationResult:
    truth: dict[str, Any]
    summary: dict[str, Any]
    end_ms: int
    lines: int
    # Kafka only: next offset per partition after the last message produced.
    end_offsets: dict[int, int] = field(default_factory=dict)


class Simulation:
    def __init__(self, config: SimulationConfig, sink: Sink):
        self.config = config
        seed = config.seed
        self.rng = random.Random(f"{seed}:world")
        self.error_rng = random.Random(f"{seed}:errors")
        self.transport_rng = random.Random(f"{seed}:transport")
        self.engine = Engine(config.start_ms)
        self.output = OrderedOutput(sink)
        activity = config.activity
        self.run_key = run_key(seed, config.model_dump_json())
        self.emitter = Emitter(self.run_key, self.output, self.transport_rng,
                               ehr_offset_minutes=config.ehr_utc_offset_minutes,
                               pump_latency=activity.pump_latency_ms,
                               ehr_latency=activity.ehr_latency_ms)
        self.truth = Truth(self.engine)
        self.dice = Dice(config, self.error_rng)
        self.ids = Ids(self.rng)
        self.gateway = GATEWAY
        self.hospital = hospital.build(config, self.rng)
        self.sources: dict[int, Source] = {}
        self.infusions_started = 0
        self.telemetry = Telemetry(self)
        self.alarms = Alarms(self)
        self.routines = Routines(self)
        self.care = Care(self)
        self.lifecycle = Lifecycle(self, self._changed, self.care.on_complete)
        self.documentation = Documentation(self)
        self.programming = Programming(self)
        self.incidents = Incidents(self)
        self.census = Census(self)
        self.faults = Faults(self)
        self.emitter.faults = self.faults

    def _changed(self, source: Source) -> None:
        self.routines.on_change(source)

    def _flush(self) -> None:
        self.output.release(self.engine.now)
        self.engine.call_after(FLUSH_MS, self._flush)

    def run(
        self, *, should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> SimulationResult:
        """Generate everything up to the configured end (or until ``should_stop``)."""
        config, engine = self.config, self.engine
        if config.warm_start:
            warm.populate(self)
        else:
            for unit in config.units:
                occupied = round(unit.beds * config.activity.occupancy)
                for bed in self.hospital.beds[unit.code][:occupied]:
                    self.census.admit(unit, bed, config.start_ms - clock.HOUR, backfill=True)
        self.census.start()
        self.incidents.start()
        self.faults.start()
        self.alarms.start_battery()
        next_hour = (config.start_ms // clock.HOUR + 1) * clock.HOUR
        engine.call_at(next_hour, self.documentation.hourly)
        engine.call_at(config.start_ms, self._flush)
        reached = engine.run_until(config.end_ms, should_stop=should_stop,
                                   on_progress=on_progress)
        self.truth.finalize(reached)
        self.output.drain()
        return SimulationResult(
            truth=report.truth_document(self, reached),
            summary=report.summary(self, reached),
            end_ms=reached,
            lines=self.output.lines,
        )
