"""Typed parameters of every rule: what a rule-set file may set, and the defaults' types.

One pydantic model per rule. A rule-set file (``rulesets/*.json``) gives the values; care
areas may override some of them; :mod:`projections.discrepancies.ruleset` merges and
validates. Clinical quantities are ``Decimal`` (read from strings, never floats); windows
are minutes of *event time* (``occurred_at``), never of the wall clock.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Base of every rule's parameters: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RateTolerance(Params):
    rate_tol_pct: Decimal = Field(ge=0)
    rate_tol_floor_ml_h: Decimal = Field(ge=0)


class R01(RateTolerance):
    s1_ratio_high: Decimal = Field(gt=1)
    s1_ratio_low: Decimal = Field(gt=0, lt=1)


class R02(Params):
    compare_same_unit_only: bool


class R03(RateTolerance):
    dose_rate_tol_pct: Decimal = Field(ge=0)
    volume_tol_pct: Decimal = Field(ge=0)
    volume_tol_floor_ml: Decimal = Field(ge=0)
    align_min: Decimal = Field(ge=0)
    edit_window_min: Decimal = Field(ge=0)


class R04(Params):
    name_fallback: bool


class Empty(Params):
    pass


class R07(Params):
    association_grace_min: Decimal = Field(ge=0)


class R08(Params):
    grace_min: Decimal = Field(ge=0)
    standing_order_names: tuple[str, ...] = ()
    standing_order_codes: tuple[str, ...] = ()


class GraceWindow(Params):
    grace_min: Decimal = Field(ge=0)


class R10(Params):
    fields: tuple[str, ...]


class R11(Params):
    auto_request_window_min: Decimal = Field(ge=0)
    all_pumps_interoperable: bool
    non_interoperable_pumps: tuple[str, ...] = ()


class R12(Params):
    missing_entry_is_bypass: bool


class R13(Params):
    fast_override_s: Decimal = Field(ge=0)
    over_soft_ratio: Decimal = Field(gt=1)
    repeat_count: int = Field(ge=2)


class Window(Params):
    window_min: Decimal = Field(ge=0)


class R15(Params):
    #: ADT care area -> drug-library care areas allowed there (absent: must be equal).
    allowed_profiles: dict[str, tuple[str, ...]] = {}


class R17(Params):
    tol_pct: Decimal = Field(ge=0)
    tol_floor_kg: Decimal = Field(ge=0)
    s1_pct: Decimal = Field(ge=0)


class R18(Params):
    overfill_pct: Decimal = Field(ge=0)


class R22(Params):
    high_min: Decimal = Field(ge=0)
    medium_min: Decimal = Field(ge=0)
    escalate_factor: Decimal = Field(ge=1)
    escalate_codes: tuple[str, ...]


class R23(Params):
    vasoactive_min: Decimal = Field(ge=0)
    other_min: Decimal = Field(ge=0)


class R24(Window):
    exclude_pause_reasons: tuple[str, ...]


class R25(Window):
    continuous_only: bool


class R29(Params):
    stale_min: Decimal = Field(ge=0)


class R30(Params):
    late_min: Decimal = Field(gt=0)
    clear_after_on_time: int = Field(ge=1)


#: The parameter model of each rule id; a rule-set may only configure these rules.
PARAMS: dict[str, type[Params]] = {
    "R01": R01, "R02": R02, "R03": R03, "R04": R04, "R05": Empty, "R06": Empty, "R07": R07,
    "R08": R08, "R09": GraceWindow, "R10": R10, "R11": R11, "R12": R12, "R13": R13,
    "R14": Window, "R15": R15, "R17": R17, "R18": R18, "R20": Window, "R21": Window,
    "R22": R22, "R23": R23, "R24": R24, "R25": R25, "R27": Empty, "R28": Empty, "R29": R29,
    "R30": R30, "R31": Empty,
}
