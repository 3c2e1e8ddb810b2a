"""An infusion's flow (mL/h) to its dose rate and back, and volumes to doses and back,
through a concentration and, for weight-based doses, a body weight."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger.units.registry import (
    _CTX,
    DOSE,
    DOSE_RATE,
    NotConvertible,
    Number,
    Unit,
    WeightRequired,
    _dec,
    _finish,
    _product,
    _require_commensurable,
    _unit,
)


@dataclass(frozen=True, slots=True)
class _Mix:
    """An infusate in base units: ``amount`` (mg, [iU], meq or mmol) in ``volume`` mL.

    ``weight`` is the body weight in kg when the dose unit is weight-based, else 1, so one
    formula serves both.
    """

    amount: Decimal
    volume: Decimal
    weight: Decimal

    def to_volume(self, value: Number, dose: Unit, per: Decimal, places: int | None) -> Decimal:
        numerator = _product(_dec(value, "dose"), dose.factor, self.weight, self.volume)
        return _finish(_CTX.divide(numerator, _product(self.amount, per)), places)

    def to_dose(self, value: Number, dose: Unit, per: Decimal, places: int | None) -> Decimal:
        numerator = _product(_dec(value, "volume"), per, self.amount)
        return _finish(
            _CTX.divide(numerator, _product(self.volume, self.weight, dose.factor)), places
        )


def _mix(
    dose: Unit,
    concentration_amount: Number,
    amount_unit: str | Unit,
    concentration_volume: Number,
    volume_unit: str | Unit,
    weight_kg: Number | None,
) -> _Mix:
    amount_u = _unit(amount_unit, "amount")
    _require_commensurable(dose, amount_u)
    amount = _product(_dec(concentration_amount, "concentration amount"), amount_u.factor)
    volume_u = _unit(volume_unit, "volume")
    volume = _product(_dec(concentration_volume, "concentration volume"), volume_u.factor)
    if amount <= 0 or volume <= 0:
        raise NotConvertible("a concentration needs a positive amount and a positive volume")
    if not dose.per_kg:
        return _Mix(amount, volume, Decimal(1))
    if weight_kg is None:
        raise WeightRequired(f"{dose.code!r} is weight-based: a body weight is required")
    weight = _dec(weight_kg, "weight")
    if weight <= 0:
        raise NotConvertible("a weight-based dose needs a positive body weight")
    return _Mix(amount, volume, weight)


def flow_from_dose_rate(
    dose_rate: Number,
    unit: str | Unit,
    concentration_amount: Number,
    amount_unit: str | Unit,
    concentration_volume: Number,
    volume_unit: str | Unit,
    weight_kg: Number | None = None,
    *,
    flow_unit: str | Unit = "mL/h",
    places: int | None = None,
) -> Decimal:
    """The flow (in ``flow_unit``, mL/h by default) that delivers ``dose_rate`` in ``unit``.

    ``flow = dose_rate × weight × volume / amount`` in base units. ``weight_kg`` is needed
    only when ``unit`` is weight-based (``/kg``) and is ignored otherwise.
    """
    dose = _unit(unit, DOSE_RATE)
    per = _unit(flow_unit, "flow").factor
    mix = _mix(
        dose, concentration_amount, amount_unit, concentration_volume, volume_unit, weight_kg
    )
    return mix.to_volume(dose_rate, dose, per, places)


def dose_rate_from_flow(
    flow: Number,
    unit: str | Unit,
    concentration_amount: Number,
    amount_unit: str | Unit,
    concentration_volume: Number,
    volume_unit: str | Unit,
    weight_kg: Number | None = None,
    *,
    flow_unit: str | Unit = "mL/h",
    places: int | None = None,
) -> Decimal:
    """The dose rate, in ``unit``, that ``flow`` (in ``flow_unit``) delivers.

    The inverse of :func:`flow_from_dose_rate`, with the same arguments in the same order.
    """
    dose = _unit(unit, DOSE_RATE)
    per = _unit(flow_unit, "flow").factor
    mix = _mix(
        dose, concentration_amount, amount_unit, concentration_volume, volume_unit, weight_kg
    )
    return mix.to_dose(flow, dose, per, places)


def volume_from_dose(
    dose: Number,
    unit: str | Unit,
    concentration_amount: Number,
    amount_unit: str | Unit,
    concentration_volume: Number,
    volume_unit: str | Unit,
    weight_kg: Number | None = None,
    *,
    places: int | None = None,
) -> Decimal:
    """The volume in mL that holds a one-off ``dose`` (a bolus) in ``unit``."""
    dose_u = _unit(unit, DOSE)
    mix = _mix(
        dose_u, concentration_amount, amount_unit, concentration_volume, volume_unit, weight_kg
    )
    return mix.to_volume(dose, dose_u, Decimal(1), places)


def dose_from_volume(
    volume_ml: Number,
    unit: str | Unit,
    concentration_amount: Number,
    amount_unit: str | Unit,
    concentration_volume: Number,
    volume_unit: str | Unit,
    weight_kg: Number | None = None,
    *,
    places: int | None = None,
) -> Decimal:
    """The one-off dose, in ``unit``, held in ``volume_ml`` mL (inverse of volume_from_dose)."""
    dose = _unit(unit, DOSE)
    mix = _mix(
        dose, concentration_amount, amount_unit, concentration_volume, volume_unit, weight_kg
    )
    return mix.to_dose(volume_ml, dose, Decimal(1), places)
