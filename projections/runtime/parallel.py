"""Rebuilding projections in several processes: one core per group of projections.

Projections are independent while they are being built (each has its own generation,
tables and position), and a rebuild is CPU-bound in Python, so on a machine with spare
cores the groups are built in forked worker processes, each reading the ledger once for
its group. The views are switched afterwards by the caller's process, in dependency order,
so no two processes ever re-point views that read each other.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Sequence
from typing import Any

import psycopg

from projections.runtime import catalog
from projections.runtime.base import Projection
from projections.runtime.rebuild import CHUNK_EVENTS, BuiltGeneration, build_together


def groups(projections: Sequence[Projection], jobs: int) -> list[list[Projection]]:
    """Split into at most ``jobs`` groups of similar cost (longest first, to the lightest)."""
    bins: list[tuple[float, list[Projection]]] = [(0.0, []) for _ in range(max(1, jobs))]
    for projection in sorted(projections, key=lambda p: -p.rebuild_cost):
        index = min(range(len(bins)), key=lambda i: bins[i][0])
        cost, members = bins[index]
        bins[index] = (cost + projection.rebuild_cost, [*members, projection])
    return [members for _, members in bins if members]


def _work(conninfo: str, group: list[Projection], batch_size: int, chunk_events: int,
          results: Any) -> None:
    try:
        results.put(("ok", build_together(conninfo, group, batch_size=batch_size,
                                          chunk_events=chunk_events)))
    except BaseException as exc:  # reported to the parent, which fails the rebuild
        results.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def build_in_parallel(
    conninfo: str, projections: Sequence[Projection], *, jobs: int, batch_size: int = 5000,
    chunk_events: int = CHUNK_EVENTS,
) -> list[BuiltGeneration]:
    """Build every projection's new generation, ``jobs`` processes at a time."""
    parts = groups(projections, jobs)
    if len(parts) == 1:
        return build_together(conninfo, parts[0], batch_size=batch_size,
                              chunk_events=chunk_events)
    # Every projection's active generation and views exist before the workers start, made
    # here in the given (dependency) order: on a new database a worker would otherwise
    # create a view that reads another group's view before that one exists.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for projection in projections:
            catalog.ensure_active(conn, projection)
    # fork: the workers inherit the configured projection objects (rule sets, intervals)
    # without pickling them; each opens its own connections after the fork.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_work,
                               args=(conninfo, part, batch_size, chunk_events, results),
                               name=f"rebuild-{'+'.join(p.name for p in part)}")
               for part in parts]
    for worker in workers:
        worker.start()
    built: list[BuiltGeneration] = []
    errors: list[str] = []
    reported = 0
    while reported < len(workers):
        try:
            status, payload = results.get(timeout=1.0)
        except queue.Empty:
            # A worker killed outright (OOM killer, SIGKILL) never reports: do not wait on it
            # forever. Its generations stay 'building' and the next rebuild resumes them.
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead and results.empty():
                errors += [f"{w.name} exited with code {w.exitcode}" for w in dead]
                break
            continue
        reported += 1
        if status == "ok":
            built.extend(payload)
        else:
            errors.append(payload)
    for worker in workers:
        worker.join()
    if errors:
        # Built generations stay 'building': the next rebuild resumes them.
        raise RuntimeError("rebuild failed in a worker process:\n" + "\n".join(errors))
    return built
