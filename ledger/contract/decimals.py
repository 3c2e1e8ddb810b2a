"""Exact decimal numbers on the wire: read as written, never through binary floating point.

EVENTS.md: a quantity value is "a decimal string or a JSON number, read exactly as
written, at most 12 significant digits, no exponent; zero allowed, negative rejected".
Pydantic's own JSON parser turns every JSON number with a fraction into a binary float
before a validator sees it (``1.00000000000000000001`` arrives as ``1.0``), so the
contract reads JSON itself (``ledger.contract.reading``) and hands JSON numbers over as
:class:`JsonNumber`, which still holds the literal text. Python floats are refused.

Accepted literals are exactly ``(0|[1-9][0-9]*)(\\.[0-9]+)?``, so formatting the Decimal
back with ``format(d, "f")`` reproduces the literal, scale included ("14.40" stays "14.40").
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator, SerializationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

#: Serialisation context under which values render in their comparison form.
COMPARE = {"ledger.compare": True}

MAX_SIGNIFICANT_DIGITS = 12
DECIMAL_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"

_PLAIN = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_NEGATIVE = re.compile(r"-[0-9]+(?:\.[0-9]+)?")
_EXPONENT = re.compile(r"[-+]?[0-9]*\.?[0-9]+[eE][-+]?[0-9]+")


class JsonNumber:
    """A JSON number with a fraction or exponent, kept as the literal text the producer sent."""

    __slots__ = ("literal",)

    def __init__(self, literal: str):
        self.literal = literal

    def __repr__(self) -> str:
        return f"JsonNumber({self.literal!r})"


def comparing(info: SerializationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and context.get("ledger.compare") is True


def _refuse(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, "{reason}", {"reason": message})


# Telemetry repeats the same few values (rates, volumes) all day; validating each literal
# once keeps the per-event cost down. Only accepted literals are cached, and the cache is
# simply dropped when it grows past its bound.
_ACCEPTED: dict[str, Decimal] = {}
_ACCEPTED_MAX = 50_000


def _from_text(text: str) -> Decimal:
    cached = _ACCEPTED.get(text)
    if cached is not None:
        return cached
    if _PLAIN.fullmatch(text):
        number = Decimal(text)
        if len(number.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
            raise _refuse(
                "too_many_digits",
                f"{text} has more than {MAX_SIGNIFICANT_DIGITS} significant digits",
            )
        if len(_ACCEPTED) >= _ACCEPTED_MAX:
            _ACCEPTED.clear()
        _ACCEPTED[text] = number
        return number
    if _NEGATIVE.fullmatch(text):
        raise _refuse("negative_quantity", f"{text} is negative; quantities are zero or more")
    if _EXPONENT.fullmatch(text):
        raise _refuse("exponent_not_allowed", f"{text} uses an exponent; write it out in full")
    raise _refuse("invalid_decimal", "expected a plain decimal number such as 31.875")


def parse_decimal(value: object) -> Decimal:
    """Validate one wire decimal (string, JSON number, int or Decimal; never a float)."""
    if type(value) is str:
        return _from_text(value)
    if isinstance(value, JsonNumber):
        return _from_text(value.literal)
    if isinstance(value, str):
        return _from_text(str(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _refuse("invalid_decimal", "a decimal must be a finite number")
        return _from_text(format(value, "f"))
    if isinstance(value, int) and not isinstance(value, bool):
        return _from_text(str(value))
    if isinstance(value, float):
        raise _refuse(
            "float_not_allowed",
            "a binary float cannot carry an exact decimal: pass a string or a Decimal",
        )
    raise _refuse("decimal_type", "expected a decimal string or a JSON number")


def format_decimal(value: Decimal, info: SerializationInfo) -> str:
    """The wire text of a decimal: no exponent, scale kept ("14.40").

    Serialised for comparison (``content_digest``), the value is normalised instead, so
    "12", 12 and "12.0" compare equal.
    """
    if comparing(info):
        return format(value.normalize(), "f")
    return format(value, "f")


#: A non-negative decimal of at most 12 significant digits, exact, serialised as a string.
WireDecimal = Annotated[
    Decimal,
    PlainValidator(parse_decimal),
    PlainSerializer(format_decimal, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DECIMAL_PATTERN,
            "description": (
                "A non-negative decimal written out in full (no exponent), at most "
                f'{MAX_SIGNIFICANT_DIGITS} significant digits, e.g. "31.875". A JSON '
                "number written the same way is also accepted and read exactly as written."
            ),
            "examples": ["31.875", "0", "14.40"],
        }
    ),
]
