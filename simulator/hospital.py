"""The hospital's structure: units and beds, patients, pumps and their channels.

A pump belongs to a unit's pool; it is at a patient's bedside while one of its channels is
associated with that patient. Dual-channel large-volume pumps expose channels "A" and "B",
the rest one channel "A". Each pump has its own status-report period (10-60 s) and a tiny
natural clock offset; injected skew episodes and communication gaps are set on the pump by
:mod:`simulator.transport`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from simulator.config import SimulationConfig, UnitSpec

if TYPE_CHECKING:
    from simulator.infusions import Source
    from simulator.orders import Order


@dataclass(eq=False)
class Patient:
    patient_id: str
    encounter_id: str
    unit: UnitSpec
    bed: str
    weight: Decimal
    admitted_ms: int
    orders: list[Order] = field(default_factory=list)

    def active_orders(self) -> list[Order]:
        return [o for o in self.orders if o.active]


@dataclass(eq=False)
class Channel:
    pump: Pump
    label: str
    patient: Patient | None = None  # associated patient
    primary: Source | None = None
    secondary: Source | None = None
    busy: bool = False  # a nurse is programming it
    reporting: bool = False  # its telemetry loop is scheduled
    telemetry_gen: int = 0

    @property
    def idle(self) -> bool:
        return self.primary is None and self.secondary is None and not self.busy

    def active_source(self) -> Source | None:
        return self.secondary if self.secondary is not None else self.primary


@dataclass(eq=False)
class Pump:
    pump_id: str
    unit: UnitSpec
    report_ms: int
    natural_skew_ms: int
    channels: list[Channel] = field(default_factory=list)
    alarm_seq: int = 0
    skew_ms: int = 0  # injected offset of the device clock (negative: behind)
    skew_from_ms: int = -1
    skew_until_ms: int = -1
    gap_until_ms: int = -1  # communication lost until then: events are buffered
    gap_from_ms: int = -1

    def offset_at(self, at_ms: int) -> int:
        extra = self.skew_ms if self.skew_from_ms <= at_ms < self.skew_until_ms else 0
        return self.natural_skew_ms + extra

    @property
    def free(self) -> bool:
        return all(c.idle and c.patient is None for c in self.channels)

    def running(self) -> bool:
        return any(c.primary is not None or c.secondary is not None for c in self.channels)

    def next_alarm_id(self) -> str:
        self.alarm_seq += 1
        return f"{self.pump_id}-AL{self.alarm_seq:05d}"


@dataclass(eq=False)
class Hospital:
    units: tuple[UnitSpec, ...]
    beds: dict[str, list[str]]
    pumps: list[Pump]
    pumps_by_unit: dict[str, list[Pump]]
    patients: list[Patient] = field(default_factory=list)
    occupied: dict[tuple[str, str], Patient] = field(default_factory=dict)

    def empty_beds(self, unit: UnitSpec) -> list[str]:
        return [b for b in self.beds[unit.code] if (unit.code, b) not in self.occupied]

    def free_channel(self, patient: Patient, rng: random.Random) -> Channel | None:
        """A channel for a new primary infusion: first at a pump already at the bedside."""
        for pump in self.pumps_by_unit[patient.unit.code]:
            for channel in pump.channels:
                if channel.idle and channel.patient is patient:
                    return channel
        bedside = [
            c
            for p in self.pumps_by_unit[patient.unit.code]
            if any(ch.patient is patient for ch in p.channels)
            for c in p.channels
            if c.idle and c.patient is None
        ]
        if bedside:
            return bedside[0]
        pool = [p for p in self.pumps_by_unit[patient.unit.code] if p.free]
        if not pool:
            pool = [p for p in self.pumps if p.free]
        if not pool:
            return None
        return rng.choice(pool).channels[0]


def build(config: SimulationConfig, rng: random.Random) -> Hospital:
    beds: dict[str, list[str]] = {}
    pumps: list[Pump] = []
    by_unit: dict[str, list[Pump]] = {}
    number = 0
    activity = config.activity
    for unit in config.units:
        beds[unit.code] = [f"{unit.code}-{i + 1:02d}" for i in range(unit.beds)]
        by_unit[unit.code] = []
        for _ in range(unit.pumps):
            number += 1
            period = report_period_s(rng, activity.telemetry_min_s, activity.telemetry_max_s)
            pump = Pump(
                pump_id=f"PUMP-{number:04d}",
                unit=unit,
                report_ms=period * 1000,
                natural_skew_ms=-rng.randint(0, 2000),
            )
            labels = ("A", "B") if rng.random() < 0.7 else ("A",)
            pump.channels = [Channel(pump, label) for label in labels]
            pumps.append(pump)
            by_unit[unit.code].append(pump)
    return Hospital(config.units, beds, pumps, by_unit)


def report_period_s(rng: random.Random, low: int, high: int) -> int:
    """Most gateways keep the PCD-01 default of one report a minute; some report faster."""
    if rng.random() < 0.6:
        return high
    return rng.randint(low, high)


def new_weight(rng: random.Random) -> Decimal:
    kg = min(160.0, max(42.0, rng.gauss(80.0, 17.0)))
    return Decimal(f"{kg:.1f}")
