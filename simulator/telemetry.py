"""Periodic status telemetry (PCD-01 style): one ``infusion.status_reported`` per busy
channel every 10-60 s, at the pump's configured report period.

A channel reports while it has a source (infusing, paused, alarming or in KVO); the report
describes the active source (the secondary while a piggyback runs). Telemetry is by far the
largest share of events, so this loop is kept lean.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from simulator.events import GATEWAY, to_json

if TYPE_CHECKING:
    from simulator.hospital import Channel
    from simulator.simulation import Simulation

_STATE = {"infusing": "infusing", "paused": "paused", "alarm": "alarming", "kvo": "kvo",
          "stopped": "stopped"}
_TENTH = Decimal("0.1")
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_MIN = Decimal(60)


class Telemetry:
    def __init__(self, sim: Simulation):
        self.sim = sim
        self.enabled = sim.config.telemetry
        self.rng = random.Random(f"{sim.config.seed}:telemetry")

    def ensure(self, channel: Channel) -> None:
        """Start the report loop of ``channel`` unless it runs already."""
        if not self.enabled or channel.reporting:
            return
        channel.reporting = True
        channel.telemetry_gen += 1
        pump = channel.pump
        first = self.rng.randint(1, pump.report_ms)
        self.sim.engine.call_after(first, self._tick, channel, channel.telemetry_gen)

    def _tick(self, channel: Channel, gen: int) -> None:
        if gen != channel.telemetry_gen:
            return
        source = channel.active_source()
        if source is None:
            channel.reporting = False
            return
        sim = self.sim
        now = sim.engine.now
        state = source.state
        key = (state, source.rate, source.dose)
        if source.telemetry_key != key:
            head = f'{{"state":"{_STATE[state]}","rate":{{"value":"{source.rate:f}","unit":"mL/h"}}'
            dose = source.dose_qty()
            if dose is not None:
                head += f',"dose_rate":{{"value":"{dose["value"]}","unit":"{dose["unit"]}"}}'
            source.telemetry_key, source.telemetry_head = key, head
        volume = source.volume(now)
        shown = volume.quantize(_CENT, rounding=ROUND_HALF_EVEN)
        parts = [source.telemetry_head, f',"volume_infused":{{"value":"{shown:f}","unit":"mL"}}']
        if state != "kvo":
            left = max(_ZERO, source.program.vtbi - volume)
            left = left.quantize(_CENT, rounding=ROUND_HALF_EVEN)
            parts.append(f',"vtbi_remaining":{{"value":"{left:f}","unit":"mL"}}')
            if state == "infusing" and source.rate > 0:
                minutes = (left * _MIN / source.rate).quantize(_TENTH, rounding=ROUND_HALF_EVEN)
                parts.append(f',"time_remaining":{{"value":"{minutes:f}","unit":"min"}}')
        if source.role != "primary":
            parts.append(f',"infusate_source":"{source.role}"')
        parts.append("}")
        if source.subject_json is None:
            source.subject_json = to_json(source.subject())
        sim.emitter.emit("infusion.status_reported", now, source.subject(), "".join(parts),
                         GATEWAY, pump=channel.pump, subject_json=source.subject_json,
                         key=channel.pump.pump_id)
        sim.engine.call_after(channel.pump.report_ms, self._tick, channel, gen)
