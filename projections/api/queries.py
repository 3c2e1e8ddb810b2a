"""SQL plumbing shared by the list routes: filters, keyset pages and the position they are at.

Every list is a keyset page: rows in a fixed order whose last key is the cursor, so paging
through a table that projections keep writing neither skips nor repeats rows (offsets
would). The position ("current to event N") is read by a scalar subquery inside the same
statement as the rows, so both come from one snapshot. Only fixed SQL text is formatted
here; every value a caller sends travels as a bound parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

#: The API's pool: autocommit connections that return rows as dicts.
Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

PROJECTION_POSITION = (
    "(SELECT min(notification_id) FROM projection_generations"
    " WHERE state = 'active' AND projection = ANY(%s))"
)
LEDGER_HEAD = "(SELECT max(notification_id) FROM ledger_events)"
MAX_PERIOD = timedelta(days=400)


@dataclass
class Where:
    """AND-ed conditions with their parameters, in order."""

    conditions: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, condition: str, *params: Any) -> Where:
        self.conditions.append(condition)
        self.params.extend(params)
        return self

    def when(self, value: Any, condition: str, *params: Any) -> Where:
        """Add ``condition`` only when the filter was given (``None`` means "any")."""
        if value is not None:
            self.add(condition, *(params or (value,)))
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(f"({c})" for c in self.conditions) or "true"


@dataclass(frozen=True)
class Keyset:
    """A total order over NOT NULL columns ``(name, pg type)``, all ascending or descending."""

    columns: tuple[tuple[str, str], ...]
    descending: bool = True

    @property
    def order_by(self) -> str:
        direction = " DESC" if self.descending else ""
        return ", ".join(f"{name}{direction}" for name, _ in self.columns)

    def after(self, cursor: str | None, where: Where) -> None:
        if cursor is None:
            return
        values = decode_cursor(cursor, len(self.columns))
        names = ", ".join(name for name, _ in self.columns)
        marks = ", ".join(f"%s::{kind}" for _, kind in self.columns)
        where.add(f"({names}) {'<' if self.descending else '>'} ({marks})", *values)

    def cursor_of(self, row: dict[str, Any]) -> str:
        return encode_cursor([_plain(row[name]) for name, _ in self.columns])


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def invalid_query(name: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 shaped exactly like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}]
    )


def check_period(start: datetime | date | None, end: datetime | date | None) -> None:
    """Refuse reversed or over-long periods (a bounded query is a bounded cost)."""
    if start is None or end is None:
        return
    if end < start:  # type: ignore[operator]
        raise invalid_query("to", "'to' is before 'from'", str(end))
    if end - start > MAX_PERIOD:  # type: ignore[operator]
        raise invalid_query("to", f"a period spans at most {MAX_PERIOD.days} days", str(end))


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid_query("cursor", "not a cursor this API issued", cursor) from exc
    if (
        not isinstance(values, list) or len(values) != size
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values)
    ):
        raise invalid_query("cursor", "not a cursor for this list", cursor)
    return values


@dataclass(frozen=True)
class PageResult:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    position: int | None


async def fetch_page(
    pool: Pool,
    *,
    columns: str,
    source: str,
    where: Where,
    keyset: Keyset,
    cursor: str | None,
    limit: int,
    position_sql: str = PROJECTION_POSITION,
    position_params: Sequence[Any] = (),
    source_params: Sequence[Any] = (),
) -> PageResult:
    """One keyset page of ``SELECT columns FROM source WHERE ...`` and its position.

    ``source`` may be a parenthesised subquery with its own ``source_params``."""
    keyset.after(cursor, where)
    statement = (
        f"SELECT {position_sql} AS _position, {columns} FROM {source}"
        f" WHERE {where.sql} ORDER BY {keyset.order_by} LIMIT %s"
    )
    params = [*position_params, *source_params, *where.params, limit + 1]
    async with pool.connection() as conn:
        cur = await conn.execute(statement.encode(), params)
        rows = await cur.fetchall()
        if rows:
            position = rows[0]["_position"]
        else:
            cur = await conn.execute(f"SELECT {position_sql} AS p".encode(), position_params)
            found = await cur.fetchone()
            position = found["p"] if found else None
    next_cursor = keyset.cursor_of(rows[limit - 1]) if len(rows) > limit else None
    return PageResult(rows[:limit], next_cursor, position)


async def fetch_position(
    pool: Pool, projections: Sequence[str]
) -> int | None:
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT {PROJECTION_POSITION} AS p".encode(), [list(projections)])
        row = await cur.fetchone()
    return row["p"] if row else None
