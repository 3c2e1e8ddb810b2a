"""The stored form of an event, and the key that tells a duplicate from a conflict.

``wire_dict`` is what gets stored: JSON-ready, optional fields that are absent or null
left out, decimals as strings exactly as written (scale kept: "14.40"), timestamps as
RFC 3339 with the offset they were sent with, UUIDs as lower-case strings, contract
defaults spelled out. ``parse_event(wire_dict(e)) == e``.

``content_digest`` implements EVENTS.md "Duplicates and conflicts": two events with one
``event_id`` are the same event when their validated content is equal, comparing decimals
by value ("12" = 12 = "12.0"), timestamps by instant, and ignoring ``received_at`` and
``source.message_id``. It is the SHA-256 of :func:`canonical_json` of the wire form
rendered for comparison: decimals normalised, timestamps in UTC, those two fields left out.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson

from ledger.contract.decimals import COMPARE
from ledger.contract.envelope import Envelope

_IGNORED_BY_DIGEST: dict[str, Any] = {"received_at": True, "source": {"message_id"}}


# pydantic's JSON serialiser (Rust) then orjson is ~2x faster than model_dump(mode="json"),
# and gives the same document (a unit test holds wire_dict to parse_event round trips).


def wire_dict(event: Envelope) -> dict[str, Any]:
    """The canonical, JSON-ready form of ``event`` that the ledger stores."""
    document: dict[str, Any] = orjson.loads(event.model_dump_json(exclude_none=True))
    return document


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (non-ASCII not escaped): the same bytes for the
    same document; identical to ``json.dumps(d, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()``."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


# wire_json is on every append's path. It renders the same document as wire_dict without the
# JSON text round trip in between: pydantic dumps Python values (no Python serialiser call
# per field), orjson writes them sorted. Timestamps are written by orjson itself, whose
# RFC 3339 text is ``isoformat()``'s for an aware datetime (microseconds only when not zero,
# the offset as ±hh:mm); decimals reach ``_wire_value`` and get exactly the text their JSON
# serialiser gives them (format "f"); UUIDs, strings, ints, booleans, tuples are written by
# orjson the way it writes their JSON-mode forms. A unit test holds it byte-identical to
# ``canonical_json(wire_dict(event))`` on every example and on generated events.
_WIRE_OPTIONS = orjson.OPT_SORT_KEYS


def _wire_value(value: Any) -> str:
    if type(value) is Decimal:
        return format(value, "f")
    raise TypeError(f"not a contract value: {type(value).__name__}")


def wire_json(event: Envelope) -> bytes:
    """``canonical_json(wire_dict(event))``: the event's bytes inside the stored record."""
    document = event.model_dump(exclude_none=True)
    return orjson.dumps(document, default=_wire_value, option=_WIRE_OPTIONS)


def comparable_dict(event: Envelope) -> dict[str, Any]:
    """What duplicate detection compares: the wire form with EVENTS.md's normalisations."""
    document: dict[str, Any] = orjson.loads(
        event.model_dump_json(exclude_none=True, exclude=_IGNORED_BY_DIGEST, context=COMPARE)
    )
    return document


def content_digest(event: Envelope) -> bytes:
    """32-byte SHA-256 of the event's content as EVENTS.md compares it for duplicates."""
    return hashlib.sha256(canonical_json(comparable_dict(event))).digest()
