"""Rendering a list as a JSON page, CSV or NDJSON, with the same items and cursor.

Exports are pages too (``limit`` ≤ 1000): a large export is a loop over ``next_cursor``,
given in the ``X-Next-Cursor`` header and a ``Link: rel="next"`` header, and each page is
audited like any read. Nothing is streamed before the page is complete, because the
access record (patients touched) must be written before the first byte leaves.
CSV has one column per field, nested models (quantities) as dotted columns
(``programmed_rate.value``), and free-form JSON documents and lists as JSON text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, get_args

import orjson
from fastapi import Request, Response
from pydantic import BaseModel

from projections.api.models import Format, Page
from projections.api.queries import PageResult

LIST_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page (json) or the page's items (csv, ndjson)",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    },
}


def _submodel(annotation: Any) -> type[BaseModel] | None:
    candidates = get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


@lru_cache(maxsize=64)
def csv_columns(model: type[BaseModel]) -> tuple[tuple[str, str | None], ...]:
    """``(field, subfield)`` pairs: nested models (quantities) become dotted columns."""
    columns: list[tuple[str, str | None]] = []
    for name, info in model.model_fields.items():
        sub = _submodel(info.annotation)
        if sub is None:
            columns.append((name, None))
        else:
            columns.extend((name, part) for part in sub.model_fields)
    return tuple(columns)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


#: A list's items: response models, or dicts of the model's JSON shape whose values orjson
#: writes as the model would (ids, datetimes; decimals already strings) — the hot lists.
Items = Sequence[BaseModel] | Sequence[dict[str, Any]]
#: orjson's datetime form is pydantic's when UTC is written ``Z``.
JSON_OPTIONS = orjson.OPT_UTC_Z


def _json_ready(item: BaseModel | dict[str, Any]) -> dict[str, Any]:
    """The item as JSON would show it (datetimes and ids as their JSON strings)."""
    if isinstance(item, dict):
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(item, option=JSON_OPTIONS))
        return loaded
    return item.model_dump(mode="json")


def to_csv(items: Items, model: type[BaseModel]) -> str:
    columns = csv_columns(model)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([name if part is None else f"{name}.{part}" for name, part in columns])
    for item in items:
        row = _json_ready(item)
        writer.writerow([
            _cell(row[name] if part is None else (row[name] or {}).get(part))
            for name, part in columns
        ])
    return buffer.getvalue()


def _json_bytes(item: BaseModel | dict[str, Any]) -> bytes:
    if isinstance(item, dict):
        return orjson.dumps(item, option=JSON_OPTIONS)
    return item.__pydantic_serializer__.to_json(item)


def to_ndjson(items: Items) -> bytes:
    return b"".join(_json_bytes(item) + b"\n" for item in items)


def render(
    request: Request,
    result: PageResult,
    items: Items,
    model: type[BaseModel],
    fmt: Format,
    deidentified: bool,
) -> Page[Any] | Response:
    if fmt == "json" and items and isinstance(items[0], dict):
        # Dict items: the page is dumped as is, in Page's field order (no model round trip).
        body = orjson.dumps({"items": items, "next_cursor": result.next_cursor,
                             "position": result.position, "deidentified": deidentified},
                            option=JSON_OPTIONS)
        return Response(body, media_type="application/json")
    if fmt == "json":
        page = Page[model](  # type: ignore[valid-type]
            items=list(items), next_cursor=result.next_cursor, position=result.position,
            deidentified=deidentified,
        )
        # Serialised here, once: returning the model would have FastAPI dump, re-validate and
        # dump it again against the response model (the document still declares it).
        return Response(page.__pydantic_serializer__.to_json(page),
                        media_type="application/json")
    headers = {"X-Ledger-Deidentified": "true" if deidentified else "false"}
    if result.position is not None:
        headers["X-Ledger-Position"] = str(result.position)
    if result.next_cursor is not None:
        headers["X-Next-Cursor"] = result.next_cursor
        following = request.url.include_query_params(cursor=result.next_cursor)
        headers["Link"] = f'<{following}>; rel="next"'
    if fmt == "csv":
        return Response(to_csv(items, model), media_type="text/csv; charset=utf-8",
                        headers=headers)
    return Response(to_ndjson(items), media_type="application/x-ndjson", headers=headers)
