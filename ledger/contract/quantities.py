"""Quantities with UCUM units, one class per dimension a field may hold.

EVENTS.md: "Each field accepts only its dimension: a duration where a rate belongs is
rejected with the field path". Each subclass of :class:`Quantity` names the dimensions it
accepts, so a wrong unit is reported at ``data.rate.unit`` by pydantic itself, and the
JSON Schema lists the exact unit codes each field allows. Units are parsed by
:mod:`ledger.units`; ``mEq`` is stored as ``meq``.

Fields whose dimension depends on a sibling (a DERS ``limit`` depends on ``parameter``)
use the unit-agnostic :class:`Quantity` and :func:`require_dimension` in a model validator.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, model_validator
from pydantic_core import PydanticCustomError, core_schema

from ledger.contract.common import Frozen, located
from ledger.contract.decimals import WireDecimal
from ledger.units import DOSE, DOSE_RATE, Dimension, UnitError, describe, known_codes, parse_unit


class UnitOf:
    """``Annotated[str, UnitOf(dimensions)]``: a UCUM code of one of ``dimensions``.

    Validation is a dictionary lookup of every accepted spelling (``mEq/h`` → ``meq/h``);
    only a refused code goes through :func:`ledger.units.parse_unit`, for its reason.
    """

    def __init__(self, dimensions: frozenset[Dimension] | None):
        self.dimensions = dimensions
        self.codes = {
            code: parse_unit(code, dimensions).code
            for code in known_codes(dimensions, aliases=True)
        }

    def check(self, value: object) -> str:
        canonical = self.codes.get(value) if isinstance(value, str) else None
        if canonical is not None:
            return canonical
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "a unit is a UCUM code string")
        try:
            return parse_unit(value, self.dimensions).code
        except UnitError as exc:
            raise PydanticCustomError(exc.code, "{reason}", {"reason": str(exc)}) from None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        codes = known_codes(self.dimensions)
        what = f" of {describe(self.dimensions)}" if self.dimensions else ""
        alias = "; mEq is accepted for meq" if any("meq" in c for c in codes) else ""
        return {"type": "string", "enum": codes, "description": f"UCUM code{what}{alias}"}


class Quantity(Frozen):
    """``{"value": "31.875", "unit": "mL/h"}``: an exact decimal and a UCUM code."""

    value: WireDecimal
    unit: Annotated[str, UnitOf(None)]

    def dimension_in(self, dimensions: Collection[Dimension]) -> bool:
        try:
            parse_unit(self.unit, dimensions)
        except UnitError:
            return False
        return True


def require_dimension(
    quantity: Quantity | None, dimensions: Collection[Dimension], at: str, why: str
) -> None:
    """In a model validator: refuse ``quantity`` unless its unit has one of ``dimensions``."""
    if quantity is not None and not quantity.dimension_in(dimensions):
        raise located(
            "wrong_dimension",
            f"{quantity.unit!r} is not {describe(dimensions)}, which {why} requires",
            at,
        )


def require_commensurable(quantities: dict[str, Quantity | None], why: str) -> None:
    """In a model validator: all present ``quantities`` share one dimension and amount kind."""
    present = [(name, q) for name, q in quantities.items() if q is not None]
    if not present:
        return
    first_name, first = present[0]
    reference = parse_unit(first.unit)
    for name, quantity in present[1:]:
        try:
            same = parse_unit(quantity.unit, reference.dimension).commensurable_with(reference)
        except UnitError:
            same = False
        if not same:
            raise located(
                "wrong_dimension",
                f"{quantity.unit!r} does not match {first.unit!r} ({first_name}): {why}",
                f"{name}.unit",
            )


class Volume(Quantity):
    unit: Annotated[str, UnitOf(frozenset({"volume"}))]


class BodyWeight(Quantity):
    unit: Annotated[str, UnitOf(frozenset({"mass"}))]


class Duration(Quantity):
    unit: Annotated[str, UnitOf(frozenset({"time"}))]


class Flow(Quantity):
    unit: Annotated[str, UnitOf(frozenset({"flow"}))]


class Amount(Quantity):
    unit: Annotated[str, UnitOf(frozenset({"amount"}))]


class DoseRate(Quantity):
    """A dose per time, optionally per kg of body weight (``ug/kg/min``, ``[iU]/h``)."""

    unit: Annotated[str, UnitOf(DOSE_RATE)]


class Dose(Quantity):
    """A one-off dose, optionally per kg of body weight (``mg``, ``[iU]/kg``)."""

    unit: Annotated[str, UnitOf(DOSE)]


class OrderedDose(Quantity):
    """What an order or a pump program doses: a one-off dose or a dose rate."""

    unit: Annotated[str, UnitOf(DOSE | DOSE_RATE)]


class Concentration(Frozen):
    """``{"amount": ..., "volume": ...}``, e.g. 400 mg in 250 mL."""

    amount: Amount
    volume: Volume


class Titration(Frozen):
    """The range an order lets clinicians titrate within, in the dose's dimension."""

    min: OrderedDose
    max: OrderedDose
    step: OrderedDose | None = None

    @model_validator(mode="after")
    def _one_dimension(self) -> Titration:
        require_commensurable(
            {"min": self.min, "max": self.max, "step": self.step},
            "min, max and step must be in one dimension",
        )
        return self


class Bolus(Frozen):
    """The bolus an order allows: ``dose`` each, at most ``max_per_hour`` in any hour."""

    dose: Dose
    max_per_hour: Dose | None = None
