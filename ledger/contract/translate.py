"""Pydantic's validation errors translated into the contract's ``FieldError`` list.

Callers (the dead-letter headers, the import report, the API) see one stable shape: a
dotted path (``data.rate.unit``, ``subject.pump_id``, ``data.source_event_ids.0``), a
snake_case code, and a sentence. Codes are pydantic's own error types except where the
contract names a better one (``naive_timestamp``, ``unknown_type``); errors that
model validators raise on behalf of a field carry that field's relative path in their
context under ``at`` (see ``ledger.contract.common.located``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from ledger.errors import FieldError

_RENAMED = {"timezone_aware": "naive_timestamp"}
_MESSAGES = {
    "missing": "required, but missing",
    "extra_forbidden": "not a field of this event type in contract v1",
    "timezone_aware": "the timestamp has no UTC offset: add Z or ±hh:mm",
}


def _path(loc: Iterable[int | str], at: str | None) -> str:
    parts = [str(part) for part in loc]
    if at:
        parts.append(at)
    return ".".join(parts)


def _translate(error: Any, tagged: bool) -> FieldError:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "union_tag_invalid":
        return FieldError("type", "unknown_type", f"unknown event type {ctx.get('tag')!r}")
    if kind == "union_tag_not_found":
        return FieldError("type", "missing", "the event type is required")
    if tagged and loc:
        loc = loc[1:]  # the first element is the discriminator value, not a field
    message = ctx.get("reason") or _MESSAGES.get(kind) or error["msg"]
    return FieldError(_path(loc, ctx.get("at")), _RENAMED.get(kind, kind), str(message))


def field_errors(exc: ValidationError, *, tagged: bool = True) -> list[FieldError]:
    """``tagged``: the errors come from the discriminated union, whose locations start
    with the event type."""
    errors = exc.errors(include_url=False, include_input=False)
    return [_translate(error, tagged) for error in errors]
