"""SQL shared by projection writers."""

from __future__ import annotations

from typing import Any

import psycopg

# Above this many rows a batch goes through COPY into a temporary table and one
# INSERT ... SELECT ... ON CONFLICT: one statement instead of a pipelined one per row.
_COPY_THRESHOLD = 64


def upsert_tuples(
    cur: psycopg.Cursor[Any], table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]],
    key: tuple[str, ...], guard: str,
) -> None:
    """Insert or update rows (tuples in ``columns`` order, unique by ``key``); an update
    lands only where ``guard`` holds (it names the stored row ``{table}`` and the new one
    ``EXCLUDED``). Large batches go through COPY, as in ``upsert_rows``."""
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} WHERE {guard}"
    if len(values) < _COPY_THRESHOLD:
        statement = (f"INSERT INTO {table} ({names}) VALUES"
                     f" ({', '.join('%s' for _ in columns)}) {conflict}")
        cur.executemany(statement.encode(), values)
        return
    staging = f"staging_{table.replace('.', '_')}"
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS"
        .encode())
    with cur.copy(f"COPY {staging} ({names}) FROM STDIN".encode()) as copy:
        for value in values:
            copy.write_row(value)
    cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {conflict}"
                .encode())


def upsert_rows(
    cur: psycopg.Cursor[Any], table: str, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> None:
    """Insert or update rows keyed by ``key``; an update only lands when it carries a later
    event position than the row holds, so an older event never overwrites a newer state."""
    columns = tuple(rows[0])
    upsert_tuples(cur, table, columns, [tuple(row[c] for c in columns) for row in rows], key,
                  f"{table}.last_position < EXCLUDED.last_position")
