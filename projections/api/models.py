"""Response building blocks and the query parameters every list shares.

Decimals leave the API as strings (``"14.4"``), never JSON numbers, and the schema says
so with a pattern: clients in languages with binary floats cannot lose a digit, and
schema-driven fuzzers do not send ``""`` where a number is expected. Datetimes are aware
and rendered in UTC (the API's sessions run with ``timezone=UTC``).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from ledger.contract.common import Timestamp

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
MAX_PAGE = 1000
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
#: Free-form filter values: anything but NUL, which PostgreSQL text cannot hold.
TEXT_PATTERN = r"^[^\x00]+$"


def decimal_text(value: Decimal) -> str:
    # 'f' keeps the stored scale and never switches to exponent form (0E-10 -> 0.0000000000).
    return format(value, "f")


DecimalStr = Annotated[
    Decimal,
    PlainSerializer(decimal_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}),
]


class Out(BaseModel):
    """Base of response models: immutable, built from trusted rows."""

    model_config = ConfigDict(frozen=True)


class In(BaseModel):
    """Base of request bodies: unknown fields are an error, as in the event contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantity(Out):
    """A decimal value with its UCUM unit (``{"value": "14.4", "unit": "mL/h"}``)."""

    value: DecimalStr
    unit: str | None


def quantity(row: dict[str, Any], column: str, unit_column: str | None = None) -> Quantity | None:
    value = row.get(column)
    if value is None:
        return None
    return Quantity(value=value, unit=row.get(unit_column or f"{column}_unit"))


T = TypeVar("T")


class Page(Out, Generic[T]):
    """One page of a list, the cursor of the next one, and the event position it reflects."""

    items: list[T]
    next_cursor: str | None
    position: int | None
    deidentified: bool


class Problem(Out):
    detail: str


def text_query(description: str | None = None, *, max_length: int = 200, alias: str | None = None
               ) -> Any:
    """A free-form text filter: non-empty, bounded, no NUL."""
    return Query(min_length=1, max_length=max_length, pattern=TEXT_PATTERN,
                 description=description, alias=alias)


TextFilter = Annotated[str | None, text_query()]

Format = Literal["json", "csv", "ndjson"]

Limit = Annotated[
    int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE})")
]
Cursor = Annotated[
    str | None,
    Query(max_length=1024, pattern=CURSOR_PATTERN,
          description="``next_cursor`` of the previous page"),
]
FormatParam = Annotated[
    Format,
    Query(alias="format", description="json (a page), csv or ndjson (the page's items)"),
]
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _calendar_date(value: Any) -> Any:
    # Pydantic would read "0.5" as a Unix time; a day must be written as a day.
    if isinstance(value, str) and not _DATE.match(value):
        raise PydanticCustomError("date_format", "a date is written YYYY-MM-DD")
    return value


#: An RFC 3339 instant with an offset, the contract's rule (numbers and naive times refused).
Instant = Timestamp
Day = Annotated[date, BeforeValidator(_calendar_date)]

From = Annotated[
    Instant | None, Query(alias="from", description="Start of the period (with offset)")
]
To = Annotated[
    Instant | None, Query(alias="to", description="End of the period (with offset)")
]
