"""One bag on one channel source: its program, its state machine and its volume.

States: ``infusing`` -> (``paused`` | ``alarm``) -> ``infusing`` ... -> ``kvo`` (VTBI done)
-> ``stopped``. A secondary (piggyback) source runs while the channel's primary is paused
for ``switching_source`` and gives the channel back when its VTBI is done. Volume is
exact: ``rate x elapsed`` accumulated at every transition, so segment volumes always sum
to the reported cumulative volume (no R19). Every transition bumps ``gen``; work scheduled
for an older generation (VTBI completion, hazards, titrations...) is ignored when it fires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from simulator import clock
from simulator.events import GATEWAY, Ref, compact, qty

if TYPE_CHECKING:
    from simulator.alarms import Alarm
    from simulator.hospital import Channel, Patient
    from simulator.medications import Drug
    from simulator.orders import Order
    from simulator.simulation import Simulation
    from simulator.truth import Injection, Watch

_HOUR = Decimal(clock.HOUR)
_CENT = Decimal("0.01")


@dataclass
class Program:
    """What the pump was told: possibly not what was ordered."""

    drug: Drug
    rate: Decimal
    vtbi: Decimal
    mode: str = "manual"  # auto | manual
    library_mode: str = "library"  # library | basic
    dose: Decimal | None = None
    dose_unit: str | None = None
    amount: Decimal | None = None
    amount_unit: str | None = None
    volume: Decimal | None = None
    weight: Decimal | None = None
    request_id: str | None = None
    care_area: str = ""
    role: str = "primary"

    def concentration(self) -> dict[str, Any] | None:
        if self.amount is None or self.amount_unit is None or self.volume is None:
            return None
        return {"amount": qty(self.amount, self.amount_unit), "volume": qty(self.volume, "mL")}

    def dose_qty(self) -> dict[str, str] | None:
        return qty(self.dose, self.dose_unit) if self.dose is not None and self.dose_unit else None


@dataclass(eq=False)
class Source:
    number: int
    channel: Channel
    patient: Patient
    order: Order | None
    program: Program
    role: str
    state: str = "infusing"
    rate: Decimal = Decimal(0)
    dose: Decimal | None = None
    vol_base: Decimal = Decimal(0)
    t_base: int = 0
    started_ms: int = 0
    gen: int = 0
    alarm: Alarm | None = None  # the alarm that stopped delivery
    reminder: Alarm | None = None  # KVO or hold-expired alarm, cleared when the nurse acts
    injection: Injection | None = None
    changes: list[tuple[int, str]] = field(default_factory=list)  # (time, what)
    state_watch: Watch | None = None  # R24 while paused or in KVO
    stop_watches: list[Watch] = field(default_factory=list)  # answered by any stop
    boluses: list[tuple[int, Decimal]] = field(default_factory=list)
    last_ref: Ref | None = None
    subject_json: str | None = None  # cached for telemetry
    early_minutes: int | None = None  # replace the bag this long before it runs dry
    telemetry_key: tuple[object, ...] = ()
    telemetry_head: str = ""

    @property
    def flowing(self) -> bool:
        return self.state in ("infusing", "kvo")

    def volume(self, at_ms: int) -> Decimal:
        if not self.flowing:
            return self.vol_base
        return self.vol_base + self.rate * Decimal(at_ms - self.t_base) / _HOUR

    def volume_q(self, at_ms: int) -> Decimal:
        return self.volume(at_ms).quantize(_CENT, rounding=ROUND_HALF_EVEN)

    def remaining(self, at_ms: int) -> Decimal:
        return max(Decimal(0), self.program.vtbi - self.volume(at_ms))

    def subject(self) -> dict[str, str]:
        channel = self.channel
        subject = {"pump_id": channel.pump.pump_id, "channel": channel.label}
        if channel.patient is not None:
            subject["patient_id"] = channel.patient.patient_id
        if self.order is not None:
            subject["order_id"] = self.order.order_id
        return subject

    def dose_qty(self) -> dict[str, str] | None:
        unit = self.program.dose_unit
        if self.dose is None or unit is None or self.program.drug.interval_h is not None:
            return None
        return qty(self.dose, unit)


class Lifecycle:
    """Transitions of sources, each one event; ``on_change`` re-arms hazards and care."""

    def __init__(self, sim: Simulation, on_change: Callable[[Source], None],
                 on_complete: Callable[[Source], None]):
        self.sim = sim
        self.on_change = on_change
        self.on_complete = on_complete

    def _emit(self, source: Source, event_type: str, data: dict[str, Any]) -> Ref:
        if source.role != "primary":
            data["infusate_source"] = source.role
        ref = self.sim.emitter.emit(event_type, self.sim.engine.now, source.subject(),
                                    compact(data), GATEWAY, pump=source.channel.pump)
        source.last_ref = ref
        return ref

    def _rebase(self, source: Source) -> None:
        now = self.sim.engine.now
        source.vol_base = source.volume(now)
        source.t_base = now
        source.gen += 1

    def _arm(self, source: Source) -> None:
        now = self.sim.engine.now
        if source.state == "infusing" and source.rate > 0:
            left = source.program.vtbi - source.vol_base
            ms = (left * _HOUR / source.rate).to_integral_value(rounding=ROUND_CEILING)
            self.sim.engine.call_at(now + max(1, int(ms)), self._vtbi_done, source, source.gen)
        self.on_change(source)

    def start(self, source: Source) -> Ref:
        now = self.sim.engine.now
        source.state = "infusing"
        source.rate, source.dose = source.program.rate, source.program.dose
        source.t_base = source.started_ms = now
        source.changes.append((now, "start"))
        ref = self._emit(source, "infusion.started", {
            "rate": qty(source.rate, "mL/h"), "dose_rate": source.dose_qty(),
            "vtbi": qty(source.program.vtbi, "mL")})
        self.sim.sources[source.number] = source
        self.sim.infusions_started += 1
        self.sim.telemetry.ensure(source.channel)
        self._arm(source)
        return ref

    def adopt(self, source: Source) -> None:
        """A source already running when the simulation starts (warm start)."""
        self.sim.sources[source.number] = source
        self.sim.telemetry.ensure(source.channel)
        self._arm(source)

    def change_rate(self, source: Source, rate: Decimal, dose: Decimal | None) -> Ref:
        self._rebase(source)
        previous_rate, previous_dose = source.rate, source.dose_qty()
        source.rate, source.dose = rate, dose
        source.changes.append((self.sim.engine.now, "rate"))
        ref = self._emit(source, "infusion.rate_changed", {
            "new_rate": qty(rate, "mL/h"), "previous_rate": qty(previous_rate, "mL/h"),
            "new_dose_rate": source.dose_qty(), "previous_dose_rate": previous_dose,
            "initiated_by": "manual"})
        self._arm(source)
        return ref

    def pause(self, source: Source, reason: str) -> Ref:
        self._rebase(source)
        source.state = "alarm" if reason == "alarm" else "paused"
        source.changes.append((self.sim.engine.now, "pause"))
        ref = self._emit(source, "infusion.paused", {
            "reason": reason, "volume_infused": qty(source.volume_q(self.sim.engine.now), "mL")})
        self.on_change(source)
        return ref

    def resume(self, source: Source) -> Ref:
        self._rebase(source)
        source.state = "infusing"
        source.changes.append((self.sim.engine.now, "resume"))
        ref = self._emit(source, "infusion.resumed", {})
        self._arm(source)
        return ref

    def bolus(self, source: Source, data: dict[str, Any], volume: Decimal, role: str) -> Ref:
        self._rebase(source)
        source.vol_base += volume
        ref = self.sim.emitter.emit(
            "infusion.bolus_delivered", self.sim.engine.now, source.subject(),
            compact({**data, "infusate_source": role}), GATEWAY, pump=source.channel.pump)
        self._arm(source)
        return ref

    def _vtbi_done(self, source: Source, gen: int) -> None:
        if gen != source.gen or source.state != "infusing":
            return
        self._rebase(source)
        source.vol_base = source.program.vtbi
        to_kvo = source.role == "primary"
        self._emit(source, "infusion.vtbi_completed", {
            "volume_infused": qty(source.volume_q(self.sim.engine.now), "mL"),
            "next": "kvo" if to_kvo else "stop"})
        if to_kvo:
            source.changes.append((self.sim.engine.now, "kvo"))
            source.state = "kvo"
            source.rate = min(source.program.drug.kvo_rate, source.rate)
            source.dose = None
            source.last_ref = self._emit(source, "infusion.kvo_started",
                                         {"rate": qty(source.rate, "mL/h")})
        else:
            source.state = "stopped"
        self.on_change(source)
        self.on_complete(source)

    def stop(self, source: Source, reason: str) -> Ref:
        self._rebase(source)
        source.state = "stopped"
        ref = self._emit(source, "infusion.stopped", {
            "volume_infused": qty(source.volume_q(self.sim.engine.now), "mL"), "reason": reason})
        self.on_change(source)
        self.release(source)
        return ref

    def release(self, source: Source) -> None:
        """Take a finished source off its channel (after its last event)."""
        channel = source.channel
        if channel.secondary is source:
            channel.secondary = None
        elif channel.primary is source:
            channel.primary = None
        self.sim.sources.pop(source.number, None)
