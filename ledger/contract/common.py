"""Building blocks every contract model shares: the frozen base, strings, timestamps, drugs.

EVENTS.md rules that hold for every field live here: models are frozen and refuse unknown
fields; strings are non-empty unless the contract says otherwise; timestamps are RFC 3339
strings *with* an offset (a naive one is refused with ``naive_timestamp``, never guessed
into a zone) and keep the offset they were sent with.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    StrictStr,
)
from pydantic_core import PydanticCustomError

from ledger.contract.decimals import comparing


class Frozen(BaseModel):
    """Immutable, and unknown fields are an error (``extra_forbidden``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def located(code: str, message: str, at: str) -> PydanticCustomError:
    """An error raised by a model validator that belongs to one of the model's fields.

    Pydantic places a model validator's error at the model itself; ``at`` (a dotted path
    relative to the model, e.g. ``limit.unit``) tells the error translation where it is.
    """
    return PydanticCustomError(code, "{reason}", {"reason": message, "at": at})


def at_least_one(model: BaseModel, *fields: str) -> None:
    """Raise ``at_least_one_required`` unless one of ``fields`` is present and not null."""
    if all(getattr(model, name) is None for name in fields):
        raise PydanticCustomError(
            "at_least_one_required",
            "{reason}",
            {"reason": f"at least one of {', '.join(fields)} is required"},
        )


def null_means(default: Any) -> BeforeValidator:
    """For a field with a contract default: ``null`` ("not known") takes the default too."""
    return BeforeValidator(lambda value: default if value is None else value)


#: A string that must not be empty (EVENTS.md: "Strings may be empty where noted").
Text = Annotated[StrictStr, Field(min_length=1)]
#: Free text the contract explicitly allows to be empty.
MaybeEmptyText = StrictStr
#: A subject or business identifier: a non-empty string, never a number.
Id = Annotated[StrictStr, Field(min_length=1)]

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is not None and offset.seconds % 60:
            raise PydanticCustomError(
                "invalid_timestamp", "RFC 3339 offsets are whole minutes (±hh:mm)"
            )
        return value  # AwareDatetime refuses a naive one (mapped to naive_timestamp)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "invalid_timestamp", "a timestamp must be an RFC 3339 string with an offset"
        )
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise PydanticCustomError(
            "invalid_timestamp",
            "{reason}",
            {"reason": "not an RFC 3339 timestamp like 2026-03-14T08:05:00-05:00"},
        )
    if match.group("offset") is None:
        raise PydanticCustomError(
            "naive_timestamp",
            "the timestamp has no UTC offset: add Z or ±hh:mm (device clock as reported)",
        )
    return value


def _timestamp_text(value: datetime, info: SerializationInfo) -> str:
    # Compared (content_digest), only the instant counts; stored, the sender's offset stays.
    if comparing(info):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


#: RFC 3339 with an offset; the offset is kept (compare instants, not wall clocks).
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    PlainSerializer(_timestamp_text, return_type=str, when_used="json"),
]


class Medication(Frozen):
    """A drug or fluid: RxNorm, a local formulary code, or the drug-library entry id."""

    code: Text | None = None
    system: Text | None = None
    name: Text
