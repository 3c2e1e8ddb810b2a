"""Injected error kinds, the rules each one targets, and the dice that decide them.

An injected error changes what happens at one *opportunity* (a programming, a document,
an alarm, a unit-hour...). Which rules then fire is not assumed from this table: the
simulator evaluates the rules' conditions on what was actually emitted (see
:mod:`simulator.checks` and :mod:`simulator.truth`), so an injection that stays within
tolerance, or that the drug library catches, produces no condition. ``TARGETS`` is the
documented kind -> rule mapping (the rules each kind is *meant* to trigger); the truth
file records, per injection, the conditions it actually produced.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.config import SimulationConfig


class SimulatorError(Exception):
    """Root of errors the simulator raises on purpose (bad arguments, unreachable sink)."""


class ErrorKind(StrEnum):
    WRONG_RATE = "wrong_rate"
    DECIMAL_ERROR = "decimal_error"
    WRONG_DRUG = "wrong_drug"
    WRONG_CONCENTRATION = "wrong_concentration"
    WRONG_DOSING_UNIT = "wrong_dosing_unit"
    WRONG_PATIENT = "wrong_patient"
    NO_ORDER = "no_order"
    RUNNING_AFTER_DISCONTINUE = "running_after_discontinue"
    MANUAL_EDIT_AFTER_AUTO = "manual_edit_after_auto"
    LIBRARY_BYPASS = "library_bypass"
    SOFT_LIMIT_OVERRIDE = "soft_limit_override"
    FAST_OVERRIDE = "fast_override"
    HARD_LIMIT_THEN_BASIC = "hard_limit_then_basic"
    WEIGHT_DISCREPANCY = "weight_discrepancy"
    TITRATION_OUT_OF_RANGE = "titration_out_of_range"
    UNACKNOWLEDGED_ALARM = "unacknowledged_alarm"
    UNDOCUMENTED_START = "undocumented_start"
    UNDOCUMENTED_RATE_CHANGE = "undocumented_rate_change"
    CHARTING_ERROR = "charting_error"
    ORDERED_NOT_RUNNING = "ordered_not_running"
    DUPLICATE_THERAPY = "duplicate_therapy"
    BOLUS_WITHOUT_ORDER = "bolus_without_order"
    CLOCK_SKEW = "clock_skew"
    LATE_DATA = "late_data"
    DUPLICATE_DELIVERY = "duplicate_delivery"
    OUT_OF_ORDER = "out_of_order"
    MALFORMED = "malformed"


K = ErrorKind

#: kind -> the rules it is meant to trigger (DOMAIN.md §7). Empty: absorbed or
#: dead-lettered by the ledger, counted in the truth file instead of as conditions.
TARGETS: dict[ErrorKind, tuple[str, ...]] = {
    K.WRONG_RATE: ("R01",),
    K.DECIMAL_ERROR: ("R01",),
    K.WRONG_DRUG: ("R04", "R11"),
    K.WRONG_CONCENTRATION: ("R05", "R01", "R11"),
    K.WRONG_DOSING_UNIT: ("R06", "R01", "R11"),
    K.WRONG_PATIENT: ("R07",),
    K.NO_ORDER: ("R08",),
    K.RUNNING_AFTER_DISCONTINUE: ("R09",),
    K.MANUAL_EDIT_AFTER_AUTO: ("R10",),
    K.LIBRARY_BYPASS: ("R12", "R11"),
    K.SOFT_LIMIT_OVERRIDE: ("R13",),
    K.FAST_OVERRIDE: ("R13",),
    K.HARD_LIMIT_THEN_BASIC: ("R14", "R12", "R11"),
    K.WEIGHT_DISCREPANCY: ("R17", "R01", "R11"),
    K.TITRATION_OUT_OF_RANGE: ("R02", "R01"),
    K.UNACKNOWLEDGED_ALARM: ("R22",),
    K.UNDOCUMENTED_START: ("R20",),
    K.UNDOCUMENTED_RATE_CHANGE: ("R21",),
    K.CHARTING_ERROR: ("R03",),
    K.ORDERED_NOT_RUNNING: ("R25",),
    K.DUPLICATE_THERAPY: ("R27", "R11"),
    K.BOLUS_WITHOUT_ORDER: ("R28",),
    K.CLOCK_SKEW: ("R30",),
    K.LATE_DATA: ("R30",),
    K.DUPLICATE_DELIVERY: (),
    K.OUT_OF_ORDER: (),
    K.MALFORMED: (),
}

#: Errors made while programming a pump that need the nurse's own keystrokes (so the
#: programming is manual even when an auto-program was possible), in the order drawn.
MANUAL_PROGRAMMING_KINDS = (
    K.DECIMAL_ERROR,
    K.WRONG_RATE,
    K.WRONG_DRUG,
    K.WRONG_CONCENTRATION,
    K.WRONG_DOSING_UNIT,
    K.WEIGHT_DISCREPANCY,
    K.LIBRARY_BYPASS,
)


class Dice:
    """Draws injections from their own random stream, so turning errors off leaves the
    transport and world streams untouched."""

    def __init__(self, config: SimulationConfig, rng: random.Random):
        self.config = config
        self.rng = rng
        self.rates = {kind: config.error_rate(kind.value) for kind in ErrorKind}

    def roll(self, kind: ErrorKind) -> bool:
        rate = self.rates[kind]
        # Always consume one number so one kind's rate never shifts another kind's draws.
        draw = self.rng.random()
        return rate > 0 and draw < rate

    def enabled(self, kind: ErrorKind) -> bool:
        return self.rates[kind] > 0
