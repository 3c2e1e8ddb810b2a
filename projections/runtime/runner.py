"""The projection loop: read a batch in global order, fold it, write it with the position.

One transaction per batch holds the rows, the stream states and the position, so a crash
leaves either all of a batch or none of it. New events are followed through PostgreSQL
LISTEN/NOTIFY on the channel eventsourcing's recorder notifies (``ledger_events``): the
runner sleeps in ``notifies()`` until a commit wakes it, never by polling on a timer.
An unknown event type or any error stops the projection with its position unchanged and
its status ``failed`` (fail and stop, never skip).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from ledger.contract import EVENT_TYPES
from ledger.store.reader import StoredRecord, read_positions
from projections.runtime import catalog
from projections.runtime.base import Projection, RowSink, UnknownEventType

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "ledger_events"
# Stream versions between two fold-state snapshots (for "state as of T" on long streams).
SNAPSHOT_EVERY = 500


def snapshot_row(record: StoredRecord, state: dict[str, Any]) -> tuple[Any, ...]:
    # Serialised now: the state dict keeps changing as the batch folds on.
    return (record.stream, record.version, record.notification_id, record.recorded_at,
            orjson.dumps(state).decode())


@dataclass
class _Pending:
    """A batch folded and not yet written: its rows, touched stream states and snapshots."""

    first: int
    position: int = 0
    events: int = 0
    sink: RowSink = field(default_factory=RowSink)
    touched: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    snapshots: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class RunStats:
    batches: int = 0
    events: int = 0
    position: int = 0


class ProjectionRunner:
    """Runs one projection on one generation of its tables."""

    def __init__(
        self,
        conninfo: str,
        projection: Projection,
        *,
        generation: int | None = None,
        batch_size: int = 2000,
        cache_size: int | None = 50_000,
        status_key: str | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
    ):
        self.conninfo = conninfo
        self.projection = projection
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.snapshot_every = snapshot_every
        # A rebuild reports under its own key so it never hides the live runner's status.
        self.status_key = status_key or projection.name
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self.generation = generation or catalog.ensure_active(self._conn, projection)
        self.position = catalog.position(self._conn, projection.name, self.generation)
        # Stream states this process has folded; valid while it is the only runner (the
        # position's compare-and-set guarantees that), dropped whenever a batch fails.
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.stats = RunStats(position=self.position)
        self._pending: _Pending | None = None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ProjectionRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one batch -------------------------------------------------------------------
    def step(self) -> int:
        """Process at most one batch; return how many events it covered (0: caught up)."""
        records = read_positions(self._conn, self.position, self.batch_size)
        if records:
            self.process(records)
        return len(records)

    def process(self, records: list[StoredRecord]) -> None:
        """Fold and write one batch read by the caller (events after this runner's position,
        in global order): a rebuild of several projections reads the ledger once for all."""
        self.fold(records)
        self.flush()

    def fold(self, records: list[StoredRecord]) -> None:
        """Fold a page of events into the pending batch, without writing anything yet.

        A rebuild folds many pages before one ``flush``: the batch is then as large as the
        chunk, and every row, stream state and entry the chunk touches many times is written
        once. Folds are split-invariant, so the tables end up as with small batches."""
        try:
            self._fold(records)
        except Exception as exc:
            self._fail(exc, records[0].notification_id)
            raise

    def flush(self) -> None:
        """Write the pending batch with its position in one transaction (no-op if empty)."""
        pending = self._pending
        if pending is None:
            return
        try:
            self._write(pending)
        except catalog.ConcurrentRunner:
            self._discard()
            if self._follow_switch():
                return
            raise
        except Exception as exc:
            self._fail(exc, pending.first)
            raise
        self._pending = None
        self.stats.batches += 1
        self.stats.events += pending.events
        self.stats.position = self.position

    @property
    def folded_position(self) -> int:
        """The position of the last event folded (written or pending)."""
        return self._pending.position if self._pending is not None else self.position

    @property
    def pending_events(self) -> int:
        """Events folded since the last flush."""
        return self._pending.events if self._pending is not None else 0

    def _discard(self) -> None:
        # States in the cache and the pending batch may hold folds that were never committed.
        self._pending = None
        self._cache.clear()

    def _fail(self, exc: Exception, first: int) -> None:
        """Fail and stop: nothing folded since the last write survives; status ``failed``."""
        self._discard()
        catalog.report_status(
            self._conn, self.status_key, self.generation, "failed",
            position=self.position, error=f"{type(exc).__name__}: {exc}",
            failed_at=getattr(exc, "position", first),
        )

    def _fold(self, records: list[StoredRecord]) -> None:
        projection = self.projection
        handles = projection.handles
        relevant = []
        for record in records:
            if record.type not in EVENT_TYPES:
                error = UnknownEventType(
                    f"event type {record.type!r} at position {record.notification_id} is"
                    f" unknown to projection {projection.name}"
                )
                error.position = record.notification_id  # type: ignore[attr-defined]
                raise error
            if record.type in handles:
                relevant.append(record)
        pending = self._pending
        if pending is None:
            pending = self._pending = _Pending(first=records[0].notification_id)
        states = self._states({r.stream for r in relevant}, pending.touched)
        sink, touched, snapshots = pending.sink, pending.touched, pending.snapshots
        apply, every = projection.apply, self.snapshot_every
        for record in relevant:
            state = states[record.stream]
            apply(state, record, sink)
            touched[record.stream] = (record.notification_id, state)
            if record.version % every == 0:
                snapshots.append(snapshot_row(record, state))
        pending.position = records[-1].notification_id
        pending.events += len(records)

    def _write(self, pending: _Pending) -> None:
        projection = self.projection
        with self._conn.transaction():
            cur = self._conn.cursor()
            catalog.advance(cur, projection.name, self.generation, self.position,
                            pending.position)
            projection.write(cur, self.generation, pending.sink)
            catalog.save_states(cur, projection.name, self.generation, pending.touched)
            catalog.save_snapshots(cur, projection.name, self.generation, pending.snapshots)
        self.position = pending.position
        cache = self._cache
        for stream, (_, state) in pending.touched.items():
            cache[stream] = state
            cache.move_to_end(stream)
        if self.cache_size is not None:
            while len(cache) > self.cache_size:
                cache.popitem(last=False)

    def _follow_switch(self) -> bool:
        """After a rebuild switched generations, carry on with the new active one."""
        if self.status_key != self.projection.name:
            return False
        active = catalog.active_generation(self._conn, self.projection.name)
        if active is None or active == self.generation:
            return False
        log.info("projection %s: rebuild switched to generation %s", self.projection.name, active)
        self.generation = active
        self.position = catalog.position(self._conn, self.projection.name, active)
        return True

    def _states(
        self, streams: set[str], pending: dict[str, tuple[int, dict[str, Any]]]
    ) -> dict[str, dict[str, Any]]:
        # Folded but not yet written (a chunk of several pages), then written, then stored.
        states = {s: pending[s][1] for s in streams if s in pending}
        cache = self._cache
        states.update((s, cache[s]) for s in streams - states.keys() if s in cache)
        missing = streams - states.keys()
        if missing:
            loaded = catalog.load_states(self._conn, self.projection.name, self.generation, missing)
            for stream in missing:
                states[stream] = loaded.get(stream, {})
        return states

    # -- loops -----------------------------------------------------------------------
    def run_until_caught_up(self) -> RunStats:
        """``ledger project --once`` and rebuilds: process until no event is left."""
        self.report("running")
        while self.step():
            pass
        self.report("caught_up")
        return self.stats

    def run_forever(self, stop: threading.Event, *, status_every: float = 1.0) -> RunStats:
        """Follow the ledger: catch up, then wake on NOTIFY, until ``stop`` is set."""
        listener = psycopg.connect(self.conninfo, autocommit=True)
        try:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            last_report = 0.0
            while not stop.is_set():
                processed = self.step()
                now = time.monotonic()
                if processed and now - last_report >= status_every:
                    self.report("running")
                    last_report = now
                if processed:
                    continue
                if now - last_report >= status_every:
                    self.report("caught_up")
                    last_report = now
                # Sleep until a commit notifies (or briefly, to notice `stop`).
                for _ in listener.notifies(timeout=0.5, stop_after=1):
                    break
            self.report("stopped")
        finally:
            listener.close()
        return self.stats

    def report(self, status: str) -> None:
        catalog.report_status(
            self._conn, self.status_key, self.generation, status, position=self.position
        )
