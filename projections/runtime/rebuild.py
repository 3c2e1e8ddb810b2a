"""Blue/green rebuilds: fill the next table generation from position 0, then switch the views.

Readers keep using the active generation while the new one is built; the switch (views
re-pointed, generations re-labelled) is one transaction, after which the old tables are
dropped. A crash mid-rebuild leaves a ``building`` generation with its own position, and
the next ``ledger rebuild`` resumes it rather than starting over.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.collector import collector_paused
from ledger.store.reader import read_positions
from projections.runtime import catalog
from projections.runtime.base import Projection
from projections.runtime.runner import ProjectionRunner

# Events folded between two writes of a rebuild: large enough that a batch's fixed costs
# (and rows rewritten by every page) vanish, small enough to bound a process's memory.
CHUNK_EVENTS = 100_000


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
    (result,) = rebuild_together(conninfo, [projection], batch_size=batch_size)
    return result


@dataclass(frozen=True)
class BuiltGeneration:
    """A generation filled up to the head, not yet switched to."""

    projection: str
    generation: int
    events: int
    resumed: bool


def rebuild_together(
    conninfo: str, projections: Sequence[Projection], *, batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> list[RebuildResult]:
    """Rebuild several projections reading the ledger once, then switch each to its new
    generation (in the order given: some views read others')."""
    built = build_together(conninfo, projections, batch_size=batch_size, progress=progress)
    return switch_built(conninfo, projections, built)


def build_together(
    conninfo: str, projections: Sequence[Projection], *, batch_size: int = 5000,
    progress: Callable[[int], None] | None = None, chunk_events: int = CHUNK_EVENTS,
) -> list[BuiltGeneration]:
    """Fill a new (or resume a building) generation of each projection up to the head.

    Each page of ``batch_size`` events is read and decoded once and folded by every
    projection's runner (own generation, own position, so each stays exactly-once and
    resumable on its own). Reading and decoding is a large share of a light projection's
    rebuild; doing it once saves that share for every projection but one.

    A runner writes (rows, stream states, position: one transaction) only every
    ``chunk_events`` events: a rebuild's tables are read by nobody yet, so one large batch
    per chunk writes each row that many events touch once instead of once per page, and
    the fold's stream states stay in memory (never evicted, never re-read). A crash loses
    at most the chunk being folded. ``progress(position)`` is called after each page.
    """
    building: list[tuple[Projection, int, bool]] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for projection in projections:
            catalog.ensure_active(conn, projection)
            building.append((projection, *building_generation(conn, projection)))
    with ExitStack() as stack:
        runners = [
            stack.enter_context(ProjectionRunner(
                conninfo, projection, generation=generation, batch_size=batch_size,
                status_key=f"{projection.name}:rebuild", cache_size=None,
            ))
            for projection, generation, _ in building
        ]
        reader = stack.enter_context(psycopg.connect(conninfo, autocommit=True))
        for runner in runners:
            runner.report("running")
        # A resumed generation may be further on than a new one: read from the lowest.
        after = min(runner.position for runner in runners)
        stack.enter_context(collector_paused())
        while records := read_positions(reader, after, batch_size):
            for runner in runners:
                folded = runner.folded_position
                if folded >= records[-1].notification_id:
                    continue
                if folded > after:
                    runner.fold([r for r in records if r.notification_id > folded])
                else:
                    runner.fold(records)
                if runner.pending_events >= chunk_events:
                    runner.flush()
                    _collect()
            after = records[-1].notification_id
            if progress is not None:
                progress(after)
        for runner in runners:
            runner.flush()
            runner.report("caught_up")
        return [
            BuiltGeneration(projection.name, generation, runner.stats.events, resumed)
            for (projection, generation, resumed), runner in zip(building, runners, strict=True)
        ]


def _collect() -> None:
    """Cycle collection once per chunk, instead of the collector's passes during folds.

    A rebuild keeps every stream's state (and the engine's world) in memory, and a chunk
    allocates millions of objects that live until its write: each automatic pass would
    re-traverse them (measured 8-10 us an event). The folds' garbage is acyclic (freed by
    reference counting at once), so one collection per chunk finds what cycles there are;
    the survivors are then frozen, so later collections never traverse them again."""
    gc.collect()
    gc.freeze()


def switch_built(
    conninfo: str, projections: Sequence[Projection], built: Sequence[BuiltGeneration]
) -> list[RebuildResult]:
    """Switch readers to the built generations, in the order of ``projections``."""
    by_name = {b.projection: b for b in built}
    results = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for projection in projections:
            done = by_name[projection.name]
            old = switch(conn, projection, done.generation)
            results.append(RebuildResult(projection.name, old, done.generation, done.events,
                                         done.resumed))
    return results


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
