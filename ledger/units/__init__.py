"""UCUM units of the wire contract and the one place that converts between them.

Every quantity on the wire carries a UCUM code (EVENTS.md "Quantity"). This module
parses the codes the contract allows into :class:`Unit` values with a *dimension* and an
exact Decimal scale factor to a base unit, converts values between commensurable units,
and converts an infusion's flow (mL/h) to its dose rate and back through a concentration
and, for weight-based doses, a body weight. No other module does this arithmetic, so a
units bug has one home and one test file.

Arithmetic is exact ``Decimal`` only; floats are refused. Every conversion multiplies
first and divides once, in a private context of 28 significant digits with
ROUND_HALF_EVEN: a quotient that terminates (31.875, 14.4) is exact, one that does not
(1/3) is correct to 28 significant digits. Nothing is rounded further unless the caller
passes ``places``, which quantizes the result to that many decimal places, half-even.

Base units: volume mL; body weight kg; time s; flow mL/h; amounts are counted in mg
(mass), [iU], meq or mmol — four kinds that never convert into each other — and rates
are per hour.
"""

from ledger.units.infusion import (
    dose_from_volume,
    dose_rate_from_flow,
    flow_from_dose_rate,
    volume_from_dose,
)
from ledger.units.registry import (
    DIMENSION_NAMES,
    DOSE,
    DOSE_RATE,
    AmountKind,
    Dimension,
    IncommensurableUnits,
    NotConvertible,
    Number,
    Unit,
    UnitError,
    UnknownUnit,
    WeightRequired,
    WrongDimension,
    convert,
    describe,
    known_codes,
    parse_unit,
)
from ledger.units.tolerance import rates_agree, tolerance, within_tolerance

__all__ = [
    "DIMENSION_NAMES", "DOSE", "DOSE_RATE", "AmountKind", "Dimension", "IncommensurableUnits",
    "NotConvertible", "Number", "Unit", "UnitError", "UnknownUnit", "WeightRequired",
    "WrongDimension", "convert", "describe", "dose_from_volume", "dose_rate_from_flow",
    "flow_from_dose_rate", "known_codes", "parse_unit", "rates_agree", "tolerance",
    "volume_from_dose", "within_tolerance",
]
