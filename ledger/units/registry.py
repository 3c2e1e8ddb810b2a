"""UCUM codes the contract allows, their dimensions and scale factors, and plain conversion.

See the package docstring for the arithmetic rules (exact Decimal, one division, 28
significant digits, ``places`` quantizes half-even).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Literal

from ledger.errors import LedgerError

Dimension = Literal[
    "volume",
    "amount",
    "mass",
    "time",
    "flow",
    "concentration",
    "weight_based_dose",
    "dose_rate",
    "weight_based_dose_rate",
]
AmountKind = Literal["mass", "iu", "eq", "mol"]
Number = Decimal | int | str

#: Dimensions a field holding "a dose" may use: a one-off amount, optionally per kg.
DOSE: frozenset[Dimension] = frozenset({"amount", "weight_based_dose"})
#: Dimensions a field holding "a dose rate" may use, optionally per kg.
DOSE_RATE: frozenset[Dimension] = frozenset({"dose_rate", "weight_based_dose_rate"})

DIMENSION_NAMES: dict[Dimension, str] = {
    "volume": "a volume",
    "amount": "an amount",
    "mass": "a body weight",
    "time": "a duration",
    "flow": "a flow rate",
    "concentration": "a concentration",
    "weight_based_dose": "a weight-based dose",
    "dose_rate": "a dose rate",
    "weight_based_dose_rate": "a weight-based dose rate",
}

_CTX = Context(
    prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)


class UnitError(LedgerError):
    """A unit code or a conversion the contract does not allow; ``code`` is stable."""

    code = "unit_error"


class UnknownUnit(UnitError):
    """The code is not one of the UCUM codes EVENTS.md allows."""

    code = "unknown_unit"


class WrongDimension(UnitError):
    """The unit is valid but measures something else than the field or call expects."""

    code = "wrong_dimension"


class IncommensurableUnits(UnitError):
    """Both units have the right dimension but count different things ([iU] vs mg)."""

    code = "incommensurable_units"


class WeightRequired(UnitError):
    """A weight-based unit (``/kg``) was used without a body weight."""

    code = "weight_required"


class NotConvertible(UnitError):
    """A conversion input makes the arithmetic meaningless (zero concentration or weight)."""

    code = "not_convertible"


@dataclass(frozen=True, slots=True)
class Unit:
    """A parsed UCUM code: ``value × factor`` is the value in ``base``.

    ``kind`` says what an amount-bearing unit counts (mass, international units,
    equivalents, moles); it is ``None`` for volume, body weight, time and flow.
    """

    code: str
    dimension: Dimension
    factor: Decimal
    base: str
    kind: AmountKind | None = None
    per_kg: bool = False

    def commensurable_with(self, other: Unit) -> bool:
        return self.dimension == other.dimension and self.kind == other.kind


_AMOUNTS: dict[str, tuple[AmountKind, Decimal, str]] = {
    "g": ("mass", Decimal(1000), "mg"),
    "mg": ("mass", Decimal(1), "mg"),
    "ug": ("mass", Decimal("0.001"), "mg"),
    "ng": ("mass", Decimal("0.000001"), "mg"),
    "[iU]": ("iu", Decimal(1), "[iU]"),
    "meq": ("eq", Decimal(1), "meq"),
    "mmol": ("mol", Decimal(1), "mmol"),
}
_VOLUMES = {"mL": Decimal(1), "L": Decimal(1000)}
_BODY_WEIGHTS = {"kg": Decimal(1), "g": Decimal("0.001")}
_DURATIONS = {"s": Decimal(1), "min": Decimal(60), "h": Decimal(3600)}
_PER_TIME = {"h": Decimal(1), "min": Decimal(60)}  # × this turns "per <time>" into per hour
_ALIASES = {"mEq": "meq"}


def _build_registry() -> Iterator[Unit]:
    # Amounts come first so that a bare "g" reads as a drug amount unless a caller asks
    # for a body weight.
    for amount, (kind, factor, base) in _AMOUNTS.items():
        yield Unit(amount, "amount", factor, base, kind)
        yield Unit(f"{amount}/mL", "concentration", factor, f"{base}/mL", kind)
        yield Unit(f"{amount}/kg", "weight_based_dose", factor, f"{base}/kg", kind, per_kg=True)
        for time, per in _PER_TIME.items():
            yield Unit(f"{amount}/{time}", "dose_rate", factor * per, f"{base}/h", kind)
            yield Unit(
                f"{amount}/kg/{time}",
                "weight_based_dose_rate",
                factor * per,
                f"{base}/kg/h",
                kind,
                per_kg=True,
            )
    for code, factor in _VOLUMES.items():
        yield Unit(code, "volume", factor, "mL")
    for code, factor in _BODY_WEIGHTS.items():
        yield Unit(code, "mass", factor, "kg")
    for code, factor in _DURATIONS.items():
        yield Unit(code, "time", factor, "s")
    for time, per in _PER_TIME.items():
        yield Unit(f"mL/{time}", "flow", per, "mL/h")


def _index(units: Iterator[Unit]) -> dict[str, tuple[Unit, ...]]:
    # "g" is both an amount of drug and a body weight: a code may have several readings,
    # and the dimension a caller expects picks one.
    index: dict[str, tuple[Unit, ...]] = {}
    for unit in units:
        index[unit.code] = (*index.get(unit.code, ()), unit)
    for code in list(index):
        for alias, canonical in _ALIASES.items():
            if canonical in code.split("/"):
                spelled = "/".join(alias if p == canonical else p for p in code.split("/"))
                index[spelled] = index[code]
    return index


_REGISTRY = _index(_build_registry())
_FOLDED = {code.casefold(): code for code in _REGISTRY if code not in _ALIASES}


def known_codes(
    dimensions: Collection[Dimension] | None = None, *, aliases: bool = False
) -> list[str]:
    """The codes of the given dimensions (all when ``None``); aliases only when asked."""
    return [
        code
        for code, readings in _REGISTRY.items()
        if (aliases or readings[0].code == code)
        and (dimensions is None or any(u.dimension in dimensions for u in readings))
    ]


def describe(dimensions: Collection[Dimension]) -> str:
    names = sorted(DIMENSION_NAMES[d] for d in dimensions)
    return " or ".join(names)


def parse_unit(code: str, expect: Dimension | Collection[Dimension] | None = None) -> Unit:
    """Parse a UCUM ``code``; with ``expect``, the unit must have (one of) those dimensions.

    ``mEq`` is read as ``meq``. Raises :class:`UnknownUnit` or :class:`WrongDimension`.
    """
    readings = _REGISTRY.get(code) if isinstance(code, str) else None
    if readings is None:
        hint = _FOLDED.get(code.casefold()) if isinstance(code, str) else None
        why = f"; did you mean {hint!r}?" if hint else ""
        raise UnknownUnit(f"{code!r} is not a UCUM unit code this contract accepts{why}")
    if expect is None:
        return readings[0]
    wanted: Collection[Dimension] = (expect,) if isinstance(expect, str) else expect
    for unit in readings:
        if unit.dimension in wanted:
            return unit
    raise WrongDimension(
        f"{code!r} is {DIMENSION_NAMES[readings[0].dimension]}; expected {describe(wanted)}"
    )


def _unit(unit: str | Unit, expect: Dimension | Collection[Dimension] | None = None) -> Unit:
    if isinstance(unit, Unit):
        return parse_unit(unit.code, expect) if expect is not None else unit
    return parse_unit(unit, expect)


def _dec(value: Number, what: str) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise NotConvertible(f"{what} {value!r} is not a decimal number") from None
    else:
        raise TypeError(f"{what} must be a Decimal, int or decimal string, not {type(value)}")
    if not result.is_finite():
        raise NotConvertible(f"{what} must be a finite number")
    return result


def _finish(result: Decimal, places: int | None) -> Decimal:
    if places is None:
        return result
    exponent = Decimal(1).scaleb(-places, context=_CTX)
    return result.quantize(exponent, rounding=ROUND_HALF_EVEN, context=_CTX)


_KIND_NAMES: dict[AmountKind | None, str] = {
    "mass": "mass",
    "iu": "international units",
    "eq": "equivalents",
    "mol": "moles",
    None: "no amount",
}


def _require_commensurable(a: Unit, b: Unit) -> None:
    if a.kind != b.kind:
        raise IncommensurableUnits(
            f"{a.code!r} counts {_KIND_NAMES[a.kind]} and {b.code!r} counts "
            f"{_KIND_NAMES[b.kind]}: one cannot be converted into the other"
        )


def _readings(unit: str | Unit) -> tuple[Unit, ...]:
    if isinstance(unit, Unit):
        return (unit,)
    parse_unit(unit)  # raises UnknownUnit with a hint
    return _REGISTRY[unit]


def convert(
    value: Number, from_unit: str | Unit, to_unit: str | Unit, *, places: int | None = None
) -> Decimal:
    """Convert ``value`` between two units of one dimension (mg→ug, mL/min→mL/h, ...)."""
    sources, targets = _readings(from_unit), _readings(to_unit)
    pairs = [(s, t) for s in sources for t in targets if s.dimension == t.dimension]
    if not pairs:
        source, target = sources[0], targets[0]
        raise WrongDimension(
            f"cannot convert {DIMENSION_NAMES[source.dimension]} ({source.code}) "
            f"to {DIMENSION_NAMES[target.dimension]} ({target.code})"
        )
    source, target = pairs[0]
    _require_commensurable(source, target)
    number = _dec(value, "value")
    return _finish(_CTX.divide(_CTX.multiply(number, source.factor), target.factor), places)


def _product(*factors: Decimal) -> Decimal:
    result = Decimal(1)
    for factor in factors:
        result = _CTX.multiply(result, factor)
    return result
