"""The vocabulary of documentation entries: kinds, statuses, ids, times and quantities.

An *entry* is one chart-ready fact about an infusion: the infusion itself (the parent, one
per episode), a start, a rate or dose change, a pause or resume, a bolus, a switch to KVO,
a completion or stop, an infusion cleared before it started, the volume infused over an
interval, or a value a nurse charted by hand. Entry ids are UUIDv5 of what the entry is
about (its episode and source event, or its interval), so every rebuild finds the same ids
and the EHR sees one resource per fact, forever.

Quantities stay ``{"value": "<decimal string>", "unit": "<UCUM>"}`` dicts end to end; the
arithmetic converts them to :class:`~decimal.Decimal`, never to float. Times are aware; the
canonical text form is UTC with a ``Z`` (byte-stable, comparable).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final, Literal

# Fixed forever: entry ids (and so FHIR resource ids) derive from it.
DOCUMENTATION_NAMESPACE: Final = uuid.UUID("3d1c9a52-64b8-5f0e-9c27-0b8e4a6d2f11")

Kind = Literal[
    "infusion", "start", "rate_change", "pause", "resume", "kvo", "bolus", "completion",
    "stop", "not_started", "volume", "manual",
]
DocStatus = Literal["proposed", "validated", "edited", "retracted"]
Action = Literal["validated", "edited", "entered_manually", "retracted"]

#: FHIR MedicationAdministration.status of the device fact each kind records (DOMAIN.md §3:
#: running → in-progress, paused → on-hold, VTBI complete → completed, stopped early →
#: stopped, cleared before start → not-done). ``infusion`` follows its episode instead.
KIND_STATUS: Final[dict[str, str]] = {
    "start": "in-progress", "rate_change": "in-progress", "resume": "in-progress",
    "kvo": "in-progress", "pause": "on-hold", "bolus": "completed", "completion": "completed",
    "stop": "stopped", "not_started": "not-done", "volume": "completed", "manual": "completed",
}
EPISODE_STATUS: Final[dict[str, str]] = {
    "infusing": "in-progress", "kvo": "in-progress", "alarming": "in-progress",
    "programmed": "in-progress", "paused": "on-hold", "completed": "completed",
    "stopped": "stopped",
}

_CTX = Context(prec=28, rounding=ROUND_HALF_EVEN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def entry_id(*parts: str) -> str:
    """A deterministic entry id from what the entry is about."""
    return str(uuid.uuid5(DOCUMENTATION_NAMESPACE, "|".join(parts)))


def parent_id(episode_id: str) -> str:
    """The id of an episode's parent entry (the infusion as a whole)."""
    return entry_id(episode_id, "infusion")


# -- times ---------------------------------------------------------------------------------
def parse_time(value: str | datetime) -> datetime:
    """An aware datetime from RFC 3339 text (the contract refuses naive timestamps)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}: an offset is required")
    return moment


def utc_text(value: str | datetime | None) -> str | None:
    """Canonical text of an instant: UTC, ``Z``, microseconds only when present."""
    if value is None:
        return None
    moment = parse_time(value).astimezone(UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def seconds(span: timedelta) -> Decimal:
    """A duration in exact decimal seconds (timedelta keeps integer microseconds)."""
    micro = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
    return _CTX.divide(Decimal(micro), Decimal(1_000_000))


def next_boundary(moment: datetime, interval: timedelta) -> datetime:
    """The first interval boundary strictly after ``moment`` (boundaries align to the UTC
    epoch, so hourly intervals end on the hour whatever the pump's offset)."""
    return _EPOCH + ((moment - _EPOCH) // interval + 1) * interval


# -- quantities ----------------------------------------------------------------------------
def dec(value: str | int | Decimal) -> Decimal:
    if isinstance(value, float):
        raise TypeError("clinical quantities are never floats")
    return Decimal(value)


def text(value: Decimal) -> str:
    """Decimal text that keeps its scale and never turns into exponent form."""
    return format(value, "f")


def quantity(value: Decimal | str, unit: str) -> dict[str, str]:
    return {"value": value if isinstance(value, str) else text(value), "unit": unit}


def rounded(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=_CTX)


def add(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.add(a, b)


def multiply(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.multiply(a, b)


def divide(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.divide(a, b)


def quantity_or_none(data: dict[str, Any], key: str) -> dict[str, str] | None:
    found = data.get(key)
    return {"value": str(found["value"]), "unit": found["unit"]} if found else None
