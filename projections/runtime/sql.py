"""SQL shared by projection writers."""

from __future__ import annotations

from typing import Any

import psycopg


def upsert_rows(
    cur: psycopg.Cursor[Any], table: str, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> None:
    """Insert or update rows keyed by ``key``; an update only lands when it carries a later
    event position than the row holds, so an older event never overwrites a newer state."""
    columns = list(rows[0])
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        f" ({', '.join('%s' for _ in columns)}) ON CONFLICT ({', '.join(key)}) DO UPDATE SET"
        f" {updates} WHERE {table}.last_position < EXCLUDED.last_position"
    )
    cur.executemany(statement.encode(), [tuple(row[c] for c in columns) for row in rows])
