"""Pump programs: the one an order asks for, and the ways a nurse gets it wrong.

:func:`from_order` is the program a correct auto-program (or careful manual entry)
produces: the ordered drug, strength, dose and weight, and the rate the pump computes from
them. :func:`mistake` applies one injected programming error to a copy: a wrong rate
(sometimes within tolerance), a 10x keystroke error, a look-alike drug, a wrong strength,
a wrong dosing unit, a wrong weight, or basic mode. The pump recomputes the rate from what
it was given, so a wrong strength or weight also changes the flow, exactly as it would.
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from simulator.errors import ErrorKind
from simulator.infusions import Program
from simulator.medications import FORMULARY, flow_for, quantize_rate

if TYPE_CHECKING:
    from simulator.hospital import Patient
    from simulator.orders import Order

K = ErrorKind
_CENT = Decimal("0.01")


def from_order(order: Order, care_area: str, role: str) -> Program:
    drug = order.drug
    program = Program(drug=drug, rate=quantize_rate(order.expected_rate()), vtbi=drug.vtbi,
                      care_area=care_area, role=role, weight=order.weight)
    if drug.amount is not None:
        program.amount, program.amount_unit, program.volume = drug.concentration_parts()
    if order.dose is not None:
        program.dose, program.dose_unit = order.dose, order.dose_unit
    return program


def recompute(program: Program) -> Program:
    """Let the pump derive the flow from dose, strength and weight, as it does."""
    drug = program.drug
    if (program.dose is None or program.dose_unit is None or program.amount is None
            or program.amount_unit is None or program.volume is None
            or drug.interval_h is not None):
        return program
    weight = program.weight if "/kg/" in program.dose_unit else None
    program.rate = flow_for(program.dose, program.dose_unit, program.amount,
                            program.amount_unit, program.volume, weight)
    return program


def applicable(kind: ErrorKind, order: Order, patient: Patient) -> bool:
    drug = order.drug
    if kind in (K.WRONG_RATE, K.DECIMAL_ERROR):
        return order.titration is None
    if kind is K.WRONG_DRUG:
        if drug.lookalike is None:
            return False
        other = FORMULARY[drug.lookalike]
        return all(o.drug is not other for o in patient.active_orders())
    if kind is K.WRONG_CONCENTRATION:
        return drug.alt_strength is not None
    if kind is K.WRONG_DOSING_UNIT:
        return drug.alt_dose_unit is not None and order.dose is not None
    if kind is K.WEIGHT_DISCREPANCY:
        return drug.weight_based and order.weight is not None
    return kind is K.LIBRARY_BYPASS


def _scale(value: Decimal, factor: Decimal) -> Decimal:
    scaled = (value * factor).quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return max(scaled, _CENT)


def mistake(kind: ErrorKind, base: Program, rng: random.Random, *, upward: bool = True) -> Program:
    """A copy of ``base`` with the injected programming error ``kind``."""
    program = replace(base, mode="manual", request_id=None)
    dose_based = program.dose is not None and program.drug.interval_h is None
    if kind in (K.WRONG_RATE, K.DECIMAL_ERROR):
        if kind is K.DECIMAL_ERROR:
            factor = Decimal(10) if upward else Decimal("0.1")
        elif rng.random() < 0.3:
            factor = Decimal(rng.choice((97, 98, 99, 101, 102, 103))) / 100  # within tolerance
        else:
            factor = Decimal(rng.choice((50, 60, 70, 80, 85, 115, 120, 130, 150, 200))) / 100
        if dose_based and program.dose is not None:
            program.dose = _scale(program.dose, factor)
            return recompute(program)
        program.rate = quantize_rate(_scale(program.rate, factor))
        return program
    if kind is K.WRONG_DRUG:
        lookalike = program.drug.lookalike
        if lookalike is not None:
            program.drug = FORMULARY[lookalike]
        return program
    if kind is K.WRONG_CONCENTRATION and program.drug.alt_strength is not None:
        program.amount, program.volume = program.drug.alt_strength
        return recompute(program)
    if kind is K.WRONG_DOSING_UNIT and program.drug.alt_dose_unit is not None:
        program.dose_unit = program.drug.alt_dose_unit
        return recompute(program)
    if kind is K.WEIGHT_DISCREPANCY and program.weight is not None:
        if rng.random() < 0.4:
            factor = Decimal("2.2046")  # pounds entered as kilograms
        else:
            factor = Decimal(rng.choice((85, 88, 90, 110, 112, 115, 120))) / 100
        program.weight = (program.weight * factor).quantize(Decimal("0.1"))
        return recompute(program)
    if kind in (K.LIBRARY_BYPASS, K.HARD_LIMIT_THEN_BASIC):
        return basic(program)
    return program


def basic(program: Program) -> Program:
    """Basic mode: mL/h and VTBI only, no library entry, no dose, no strength."""
    return replace(program, library_mode="basic", mode="manual", request_id=None, dose=None,
                   dose_unit=None, amount=None, amount_unit=None, volume=None, weight=None)


def typo(base: Program, factor: Decimal) -> Program:
    """A keystroke slip (an extra zero, a doubled digit) that the library may catch."""
    program = replace(base)
    if program.dose is not None and program.drug.interval_h is None:
        program.dose = program.dose * factor
        return recompute(program)
    program.rate = quantize_rate(program.rate * factor)
    return program


def edited_after_auto(base: Program, rng: random.Random) -> Program:
    """The nurse changes a pre-populated value on the pump before starting (R10)."""
    program = replace(base)
    if rng.random() < 0.3 and program.vtbi > 100:
        program.vtbi = program.vtbi - 50
        return program
    factor = Decimal(rng.choice((80, 90, 110, 120, 125))) / 100
    if program.dose is not None and program.drug.interval_h is None:
        program.dose = _scale(program.dose, factor)
        return recompute(program)
    program.rate = quantize_rate(_scale(program.rate, factor))
    return program
