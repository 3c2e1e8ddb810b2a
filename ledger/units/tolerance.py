"""Tolerances: is a value close enough to a reference (``max(rel × |ref|, floor)``)?"""

from __future__ import annotations

from decimal import Decimal

from ledger.units.registry import _CTX, Number, Unit, _dec, _product, convert


def tolerance(reference: Number, *, rel: Number, floor: Number) -> Decimal:
    """``max(rel × |reference|, floor)``; ``rel`` is a fraction (0.05 means 5 %)."""
    ref = _dec(reference, "reference")
    return max(_product(_dec(rel, "rel"), _CTX.abs(ref)), _dec(floor, "floor"))


def within_tolerance(value: Number, reference: Number, *, rel: Number, floor: Number) -> bool:
    """Whether ``value`` is within ``max(rel × |reference|, floor)`` of ``reference``."""
    difference = _CTX.abs(_CTX.subtract(_dec(value, "value"), _dec(reference, "reference")))
    return difference <= tolerance(reference, rel=rel, floor=floor)


def rates_agree(
    value: Number,
    value_unit: str | Unit,
    reference: Number,
    reference_unit: str | Unit,
    *,
    rel: Number,
    floor: Number,
) -> bool:
    """Whether two quantities of one dimension agree within tolerance.

    ``value`` is first converted to ``reference_unit``; ``floor`` is in ``reference_unit``.
    """
    converted = convert(value, value_unit, reference_unit)
    return within_tolerance(converted, reference, rel=rel, floor=floor)
