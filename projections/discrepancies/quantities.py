"""The clinical arithmetic the rules need, all through :mod:`ledger.units` (exact Decimal).

Quantities arrive as wire dicts (``{"value": "14.4", "unit": "mL/h"}``). This module turns
an order into the flow it asks for (the ordered mL/h, or dose rate × weight /
concentration), compares concentrations, dose rates and weights, and says why a value
cannot be computed instead of guessing. No conversion factor is written here: they all
live in ``ledger.units``.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from ledger import units

Quantity = dict[str, Any]


def value(quantity: Quantity | None) -> Decimal | None:
    if not quantity:
        return None
    return Decimal(str(quantity["value"]))


def unit(quantity: Quantity | None) -> str | None:
    if not quantity:
        return None
    return units.parse_unit(quantity["unit"]).code


def to_unit(quantity: Quantity | None, target: str) -> Decimal | None:
    """``quantity`` in ``target`` units, or None when it is absent or not convertible."""
    if not quantity:
        return None
    try:
        return units.convert(str(quantity["value"]), quantity["unit"], target)
    except units.UnitError:
        return None


def flow(quantity: Quantity | None) -> Decimal | None:
    """A flow in mL/h."""
    return to_unit(quantity, "mL/h")


def weight_kg(quantity: Quantity | None) -> Decimal | None:
    if not quantity:
        return None
    try:
        return units.convert(str(quantity["value"]), units.parse_unit(quantity["unit"], "mass"),
                             units.parse_unit("kg", "mass"))
    except units.UnitError:
        return None


def is_dose_rate(quantity: Quantity | None) -> bool:
    if not quantity:
        return False
    try:
        units.parse_unit(quantity["unit"], units.DOSE_RATE)
    except units.UnitError:
        return False
    return True


def flow_for_dose(dose: Quantity, concentration: Quantity | None,
                  weight: Quantity | None) -> Decimal | None:
    """mL/h delivering the dose rate ``dose`` (None when it cannot be computed)."""
    if not concentration or not dose:
        return None
    amount, volume = concentration["amount"], concentration["volume"]
    return _flow_for_dose(
        str(dose["value"]), dose["unit"], str(amount["value"]), amount["unit"],
        str(volume["value"]), volume["unit"],
        None if not weight else (str(weight["value"]), weight["unit"]),
    )


# Memoised on the quantities' text: R01 re-derives the ordered flow of the same few orders
# on every rate event of their episodes, and the exact Decimal conversion (units parsed,
# products in a 28-digit context) cost more than the rest of the rule.
@lru_cache(maxsize=8192)
def _flow_for_dose(dose_value: str, dose_unit: str, amount_value: str, amount_unit: str,
                   volume_value: str, volume_unit: str,
                   weight: tuple[str, str] | None) -> Decimal | None:
    if not is_dose_rate({"value": dose_value, "unit": dose_unit}):
        return None
    kg = weight_kg({"value": weight[0], "unit": weight[1]}) if weight else None
    try:
        return units.flow_from_dose_rate(dose_value, dose_unit, amount_value, amount_unit,
                                         volume_value, volume_unit, kg)
    except units.UnitError:
        return None


def ordered_flow(order: dict[str, Any]) -> tuple[Decimal | None, str]:
    """The flow (mL/h) an order asks for and how it was derived.

    A dose rate wins when it can be converted (a dose changed by order.modified then stays
    right even if the order's mL/h was not restated), unless the last modification set
    only the rate; otherwise the ordered mL/h.
    """
    dose, rate = order.get("dose"), order.get("rate")
    derived = flow_for_dose(dose, order.get("concentration"), order.get("dosing_weight")) \
        if dose and order.get("basis") != "rate" else None
    if derived is not None:
        return derived, "dose"
    if rate:
        return flow(rate), "rate"
    if dose:
        derived = flow_for_dose(dose, order.get("concentration"), order.get("dosing_weight"))
        if derived is not None:
            return derived, "dose"
    return None, "none"


def titration_flows(order: dict[str, Any]) -> tuple[Decimal, Decimal] | None:
    """The flows of a titratable order's dose range (low, high), when computable."""
    titration = order.get("titration")
    if not titration or not order.get("dose"):
        return None
    concentration, weight = order.get("concentration"), order.get("dosing_weight")
    low = flow_for_dose(titration["min"], concentration, weight)
    high = flow_for_dose(titration["max"], concentration, weight)
    if low is None or high is None:
        return None
    return low, high


def tolerance(reference: Decimal, pct: Decimal, floor: Decimal) -> Decimal:
    return units.tolerance(reference, rel=pct, floor=floor)


def within(measured: Decimal, reference: Decimal, pct: Decimal, floor: Decimal) -> bool:
    return units.within_tolerance(measured, reference, rel=pct, floor=floor)


def concentration_per_ml(concentration: Quantity | None) -> tuple[Decimal, str] | None:
    """Amount per mL in the amount's base unit (mg, [iU], meq, mmol) and that base."""
    if not concentration:
        return None
    amount, volume = concentration["amount"], concentration["volume"]
    try:
        amount_unit = units.parse_unit(amount["unit"], "amount")
        base = units.parse_unit(amount_unit.base, "amount")
        amount_base = units.convert(str(amount["value"]), amount_unit, base)
        volume_ml = units.convert(str(volume["value"]), volume["unit"], "mL")
    except units.UnitError:
        return None
    if volume_ml == 0:
        return None
    return amount_base / volume_ml, base.code


def same_concentration(a: Quantity | None, b: Quantity | None) -> bool | None:
    """Exact equality after normalisation; None when either side is unknown."""
    if not a or not b:
        return None
    first, second = concentration_per_ml(a), concentration_per_ml(b)
    if first is None or second is None:
        return None
    # Cross-multiplied in base units so 25000 [iU]/250 mL equals 100 [iU]/mL exactly.
    return first[1] == second[1] and first[0] == second[0]


def dose_in(quantity: Quantity | None, target_unit: str) -> Decimal | None:
    """A dose or dose rate in ``target_unit`` when both have the same dimension and kind."""
    if not quantity:
        return None
    try:
        source = units.parse_unit(quantity["unit"], units.DOSE_RATE | units.DOSE)
        target = units.parse_unit(target_unit, units.DOSE_RATE | units.DOSE)
    except units.UnitError:
        return None
    if not source.commensurable_with(target):
        return None
    return units.convert(str(quantity["value"]), source, target)


def same_quantity(a: Quantity | None, b: Quantity | None) -> bool:
    """Equal by value in one unit (14.4 mL/h = 14.40 mL/h); different units differ."""
    if not a or not b:
        return a == b
    return bool(unit(a) == unit(b) and value(a) == value(b))


def fmt(number: Decimal | None, places: int = 3) -> str | None:
    """A decimal for evidence and summaries: rounded for reading, never float."""
    if number is None:
        return None
    exponent = Decimal(1).scaleb(-places)
    text = format(number.quantize(exponent).normalize(), "f")
    return text
