"""The simulator's knobs: hospital size, activity rates and error-injection rates.

Defaults describe one *average* hospital as published (docs/simulator.md gives the source
of every figure): about 390 pumps, 330 infusions and 562 pump alarms a day. Error rates are
probabilities per *opportunity* (a programming, a document, an alarm, a unit-hour...), so
forcing one to 1 makes every opportunity of that kind an error; ``error_multiplier``
scales them all and ``inject_errors=False`` turns every injection off (natural conditions,
such as a slow alarm acknowledgement, still happen: they are normal traffic).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from simulator import clock

UnitKind = Literal["icu", "stepdown", "medsurg", "oncology"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _d(default: object, description: str) -> Any:
    """A documented default (shows in the JSON schema and in the truth file's config)."""
    return Field(default=default, description=description)


class UnitSpec(_Model):
    code: str
    name: str
    kind: UnitKind
    care_area: str = Field(description="drug-library profile (care area) used on this unit")
    beds: int = Field(ge=1)
    pumps: int = Field(ge=1)


#: 174 beds and 390 pumps, more pumps per bed where acuity is higher.
_UNIT_ROWS: tuple[tuple[str, str, UnitKind, str, int, int], ...] = (
    ("MICU", "Medical ICU", "icu", "Adult ICU", 16, 60),
    ("SICU", "Surgical ICU", "icu", "Adult ICU", 14, 54),
    ("PCU", "Progressive Care", "stepdown", "Adult Step-Down", 24, 72),
    ("MS3", "Med-Surg 3", "medsurg", "Med-Surg", 32, 48),
    ("MS4", "Med-Surg 4", "medsurg", "Med-Surg", 32, 48),
    ("MS5", "Med-Surg 5", "medsurg", "Med-Surg", 32, 48),
    ("ONC", "Oncology", "oncology", "Oncology", 24, 60),
)
DEFAULT_UNITS: tuple[UnitSpec, ...] = tuple(
    UnitSpec(code=code, name=name, kind=kind, care_area=area, beds=beds, pumps=pumps)
    for code, name, kind, area, beds, pumps in _UNIT_ROWS
)


class ActivityRates(_Model):
    """Normal clinical traffic. Times are minutes unless the name says otherwise."""

    occupancy: float = Field(default=0.85, ge=0, le=1, description="share of beds occupied")
    admissions_per_empty_bed_hour: float = 0.04
    discharges_per_idle_patient_hour: float = 0.008
    orders_per_patient_day: dict[str, float] = Field(
        default_factory=lambda: {"icu": 1.3, "stepdown": 0.55, "medsurg": 0.35, "oncology": 0.45},
        description="new infusion orders per patient-day, by unit kind (tuned to 330/day)",
    )
    order_start_delay_median: float = 22.0
    verify_delay_median: float = 9.0
    auto_program_share: float = _d(0.8, "starts auto-programmed (PCD-03)")
    auto_program_reject_share: float = _d(0.03, "auto-programs refused (RRG AE)")
    order_beyond_soft_limit_share: float = _d(0.07, "orders above a soft max")
    override_share_beyond_soft: float = _d(0.85, "alerts on such orders overridden")
    fast_override_share: float = _d(0.14, "overrides within 2 s (AJHP 2021)")
    keystroke_alert_share: float = _d(0.035, "manual programs hitting a limit")
    titration_interval_mean: float = 100.0
    heparin_nomogram_interval_h: float = 6.0
    rebolus_share: float = 0.3
    pca_demands_per_hour: float = 0.8
    pauses_per_infusing_hour: float = 0.092
    pause_median: float = 6.0
    hold_expiry_s: int = _d(120, "a paused channel alarms 'hold expired' after")
    occlusions_per_infusing_hour: float = 0.064
    air_in_line_per_infusing_hour: float = 0.015
    upstream_occlusions_per_infusing_hour: float = 0.01
    door_open_per_infusing_hour: float = 0.008
    battery_low_per_pump_day: float = 0.05
    high_alarm_response_median_s: float = 35.0
    medium_alarm_response_median_s: float = 50.0
    low_alarm_response_median_s: float = 70.0
    alarm_response_sigma: float = 1.1
    alarm_fix_median_s: float = 45.0
    kvo_response_median: float = 11.0
    early_bag_change_share: float = _d(0.25, "bags replaced 5-30 min before running dry")
    discontinue_stop_delay_max: float = _d(12.0, "< the R09 grace of 15 min")
    documentation_delay_median: float = 12.0
    documentation_edit_share: float = 0.03
    telemetry_min_s: int = Field(default=10, ge=1)
    telemetry_max_s: int = Field(default=60, ge=1)
    pump_latency_ms: tuple[int, int] = (40, 1500)
    ehr_latency_ms: tuple[int, int] = (150, 3000)


class ErrorRates(_Model):
    """Probability that one opportunity becomes the injected error (see docs for each)."""

    wrong_rate: float = _d(0.006, "per manual-capable start, non-titratable order")
    decimal_error: float = _d(0.002, "per start: 10x or 0.1x keystroke error")
    wrong_drug: float = _d(0.004, "per start of a drug with a look-alike")
    wrong_concentration: float = _d(0.004, "per start of a drug with alt strength")
    wrong_dosing_unit: float = _d(0.003, "per start of a drug with alt dose unit")
    wrong_patient: float = _d(0.003, "per start")
    manual_edit_after_auto: float = _d(0.02, "per auto-programmed start")
    library_bypass: float = _d(0.04, "per start (ANIA: 96 % DERS compliance)")
    weight_discrepancy: float = _d(0.006, "per start of a weight-based order")
    titration_out_of_range: float = _d(0.004, "per titration")
    soft_limit_override: float = _d(0.008, "per order with dose limits")
    fast_override: float = _d(0.003, "per order with dose limits")
    hard_limit_then_basic: float = _d(0.002, "per order with dose limits")
    ordered_not_running: float = _d(0.01, "per continuous order")
    undocumented_start: float = _d(0.02, "per start")
    undocumented_rate_change: float = _d(0.03, "per rate change")
    charting_error: float = _d(0.004, "per documentation")
    running_after_discontinue: float = _d(0.03, "per discontinue while running")
    unacknowledged_alarm: float = _d(0.02, "per high-priority alarm")
    no_order: float = _d(0.018, "per unit-hour")
    duplicate_therapy: float = _d(0.004, "per unit-hour")
    bolus_without_order: float = _d(0.006, "per unit-hour")
    clock_skew: float = _d(0.0002, "per pump-hour with a running channel")
    late_data: float = _d(0.0004, "per pump-hour with a running channel")
    duplicate_delivery: float = _d(0.001, "per event")
    out_of_order: float = _d(0.003, "per event")
    malformed: float = _d(0.0002, "per event")


class SimulationConfig(_Model):
    seed: int = 1
    start: AwareDatetime = Field(
        default_factory=lambda: clock.to_datetime(clock.parse_instant(clock.DEFAULT_START))
    )
    hours: float = Field(default=24.0, gt=0, le=24 * 60)
    units: tuple[UnitSpec, ...] = DEFAULT_UNITS
    activity: ActivityRates = Field(default_factory=lambda: ActivityRates())
    errors: ErrorRates = Field(default_factory=lambda: ErrorRates())
    error_multiplier: float = Field(default=1.0, ge=0)
    inject_errors: bool = True
    telemetry: bool = _d(True, "periodic infusion.status_reported events")
    warm_start: bool = _d(True, "start with infusions already running")
    ehr_utc_offset_minutes: int = _d(-300, "EHR/BCMA clocks write local time")
    library_version: str = "2026.02-r3"

    @property
    def start_ms(self) -> int:
        return clock.from_datetime(self.start)

    @property
    def end_ms(self) -> int:
        return self.start_ms + round(self.hours * clock.HOUR)

    def error_rate(self, kind: str) -> float:
        if not self.inject_errors:
            return 0.0
        return min(1.0, float(getattr(self.errors, kind)) * self.error_multiplier)

    def resized(
        self, *, units: int | None = None, beds: int | None = None, pumps: int | None = None
    ) -> SimulationConfig:
        """The same hospital with ``units`` units (templates repeat), ``beds`` and ``pumps``
        in total (spread in proportion to the templates)."""
        templates = list(self.units)
        count = units or len(templates)
        chosen = [templates[i % len(templates)] for i in range(count)]
        chosen = [
            u.model_copy(update={"code": f"{u.code}-{i // len(templates) + 1}"})
            if i >= len(templates)
            else u
            for i, u in enumerate(chosen)
        ]
        total_beds = beds or sum(u.beds for u in chosen)
        total_pumps = pumps or sum(u.pumps for u in chosen)
        bed_shares = _spread(total_beds, [u.beds for u in chosen])
        pump_shares = _spread(total_pumps, [u.pumps for u in chosen])
        resized = tuple(
            u.model_copy(update={"beds": b, "pumps": p})
            for u, b, p in zip(chosen, bed_shares, pump_shares, strict=True)
        )
        return self.model_copy(update={"units": resized})


def _spread(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, at least 1 each (largest remainder)."""
    total = max(total, len(weights))
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    shares = [max(1, int(x)) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    i = 0
    while sum(shares) < total:
        shares[order[i % len(order)]] += 1
        i += 1
    while sum(shares) > total:
        j = max(range(len(shares)), key=lambda k: (shares[k], -k))
        shares[j] -= 1
    return shares


def default_start() -> datetime:
    """The default ``--start`` as an aware datetime (a fixed instant, never "now")."""
    return clock.to_datetime(clock.parse_instant(clock.DEFAULT_START))
