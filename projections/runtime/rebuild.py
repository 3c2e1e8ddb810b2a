"""Blue/green rebuilds: fill the next table generation from position 0, then switch the views.

Readers keep using the active generation while the new one is built; the switch (views
re-pointed, generations re-labelled) is one transaction, after which the old tables are
dropped. A crash mid-rebuild leaves a ``building`` generation with its own position, and
the next ``ledger rebuild`` resumes it rather than starting over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from projections.runtime import catalog
from projections.runtime.base import Projection
from projections.runtime.runner import ProjectionRunner


@dataclass(frozen=True)
class RebuildResult:
    projection: str
    old_generation: int | None
    new_generation: int
    events: int
    resumed: bool


def _lock(conn: psycopg.Connection[Any], projection: Projection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"projection:{projection.name}",))


def building_generation(conn: psycopg.Connection[Any], projection: Projection) -> tuple[int, bool]:
    """The generation being built (resumed) or a new one; ``(generation, resumed)``."""
    with conn.transaction():
        _lock(conn, projection)
        row = conn.execute(
            "SELECT generation FROM projection_generations WHERE projection = %s"
            " AND state = 'building'",
            (projection.name,),
        ).fetchone()
        if row:
            return int(row[0]), True
        newest = conn.execute(
            "SELECT COALESCE(MAX(generation), 0) FROM projection_generations WHERE projection = %s",
            (projection.name,),
        ).fetchone()
        generation = int(newest[0]) + 1 if newest else 1
        projection.create_tables(conn.cursor(), generation)
        conn.execute(
            "INSERT INTO projection_generations (projection, generation, state)"
            " VALUES (%s, %s, 'building')",
            (projection.name, generation),
        )
        return generation, False


def switch(conn: psycopg.Connection[Any], projection: Projection, generation: int) -> int | None:
    """Make ``generation`` the one readers see; drop the previous one. Returns the old one."""
    with conn.transaction():
        _lock(conn, projection)
        old = catalog.active_generation(conn, projection.name)
        conn.execute(
            "UPDATE projection_generations SET state = 'retired' WHERE projection = %s"
            " AND state = 'active'",
            (projection.name,),
        )
        conn.execute(
            "UPDATE projection_generations SET state = 'active', switched_at = clock_timestamp()"
            " WHERE projection = %s AND generation = %s",
            (projection.name, generation),
        )
        projection.create_views(conn.cursor(), generation)
    if old is not None and old != generation:
        with conn.transaction():
            for table in projection.checksum_tables(old):
                conn.execute(f"DROP TABLE IF EXISTS {table}".encode())
            for table in ("projection_stream_states", "projection_snapshots"):
                conn.execute(
                    f"DELETE FROM {table} WHERE projection = %s AND generation = %s".encode(),
                    (projection.name, old),
                )
    return old


def rebuild(conninfo: str, projection: Projection, *, batch_size: int = 5000) -> RebuildResult:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        catalog.ensure_active(conn, projection)
        generation, resumed = building_generation(conn, projection)
    with ProjectionRunner(
        conninfo, projection, generation=generation, batch_size=batch_size,
        status_key=f"{projection.name}:rebuild",
    ) as runner:
        stats = runner.run_until_caught_up()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        old = switch(conn, projection, generation)
    return RebuildResult(projection.name, old, generation, stats.events, resumed)


def table_checksums(conninfo: str, projection: Projection) -> dict[str, str]:
    """md5 over every row of the active generation's tables, in a stable order."""
    with psycopg.connect(conninfo) as conn:
        generation = catalog.active_generation(conn, projection.name)
        if generation is None:
            return {}
        result = {}
        for base, table in zip(projection.tables, projection.checksum_tables(generation),
                               strict=True):
            row = conn.execute(
                f"SELECT count(*), md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t".encode()
            ).fetchone()
            result[base] = f"{row[0]}:{row[1]}" if row else ""
        return result
