"""eventsourcing's PostgreSQL application recorder, extended with the ledger's guarantees.

It keeps the library's table (same five columns, same notification order, same NOTIFY
channel), so the library's notification log, subscriptions and projection runners read it
as shipped. What it changes is the write:

* one transaction per batch: dedupe by ``event_id`` (duplicate vs conflict by comparing
  content with the stored copy), per-stream versions and hash chains, the events (by
  binary COPY, not a row-wise INSERT), and the source positions the batch covers;
* writers serialise on a transaction-scoped advisory lock rather than ``LOCK TABLE``: it
  gives the same "notification ids follow commit order" guarantee (see the library's
  ``_lock_table`` comment), and unlike ``LOCK TABLE ... EXCLUSIVE`` it does not require the
  UPDATE/DELETE privileges the application role must not have.

The library's own ``insert_events`` (``Application.save``) is refused: an event written
without a hash, an ``event_id`` and its clocks would break the ledger's evidence.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row

from ledger.errors import LedgerError, StoreUnavailable
from ledger.store.chain import GENESIS_HASH, canonical_json, chain_hash, encode_state
from ledger.store.prepare import PreparedEvent, same_content, stored_event
from ledger.store.types import AppendResult, Outcome, SourcePosition

# Shared by every writer of this product; see the module docstring.
APPEND_LOCK_KEY = 7_406_221_002

_COLUMNS = (
    "originator_id, originator_version, topic, state, notification_id, event_id, stream,"
    " occurred_at, received_at, recorded_at, hash"
)
_TYPES = [
    "uuid", "int8", "text", "bytea", "int8", "uuid", "text",
    "timestamptz", "timestamptz", "timestamptz", "bytea",
]
_RETRIES = 3
_CONNECTION_ERRORS = (InterfaceError, OperationalError, psycopg.OperationalError)
_HEAD_CACHE_SIZE = 200_000
# How many events other writers may have appended since this one last did for their
# streams to be looked up (to forget those heads); beyond it the whole cache is dropped.
_HEAD_SCAN_LIMIT = 20_000
# Batches that look their event ids up first after a stored copy was found (see append).
_CAREFUL_BATCHES = 100


class _Lookup(Enum):
    """When ``_classify`` looks for stored copies of the batch's event ids."""

    NONE = "none"  # not at all: the unique index on event_id refuses a second copy
    BEFORE_LOCK = "before the append lock"
    UNDER_LOCK = "under the append lock"


def _unique_violation(exc: BaseException) -> bool:
    # eventsourcing's connection context re-raises psycopg's errors as its own IntegrityError.
    return isinstance(exc, psycopg.errors.UniqueViolation) or isinstance(
        exc.__cause__, psycopg.errors.UniqueViolation
    )


class LedgerRecorder(PostgresApplicationRecorder):
    """The only writer of ``ledger_events``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Stream heads this process wrote, valid only while no other writer has appended
        # since (checked under the lock against the sequence); saves a lookup per stream.
        # Keyed by stream key: a str caches its hash, a UUID recomputes it on every lookup.
        self._heads: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._last_id_written: int | None = None
        self._careful_batches = 0

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        raise LedgerError(
            "ledger_events is written only through EventStore.append(): "
            "Application.save() would store events without event_id, clocks and hashes"
        )

    def append(
        self,
        prepared: Sequence[PreparedEvent],
        positions: Sequence[SourcePosition] = (),
        before_commit: Callable[[list[AppendResult]], None] | None = None,
    ) -> list[AppendResult]:
        """Append a batch in one transaction; retry briefly when the connection drops.

        How stored copies of the batch's event ids are found depends on what this writer
        has seen lately. Normally it does not look at all: the unique index on
        ``event_id`` refuses a COPY that would store one twice, the transaction rolls back,
        and the batch is run again with the lookup made under the append lock — so a
        duplicate is never stored, and a batch with none (nearly all of them) costs no
        lookup. After such a refusal, redeliveries tend to come in runs (a partition read
        again after a crash or a rebalance, a gateway resending its buffer), so for the next
        ``_CAREFUL_BATCHES`` batches the lookup comes first, before the lock.
        """
        lookup = _Lookup.BEFORE_LOCK if self._careful_batches else _Lookup.NONE
        self._careful_batches = max(0, self._careful_batches - 1)
        for attempt in range(1, _RETRIES + 1):
            try:
                return self._append_once(prepared, positions, before_commit, lookup)
            except BaseException as exc:
                # Whatever this transaction did is rolled back: forget the heads it cached.
                self._heads.clear()
                self._last_id_written = None
                if _unique_violation(exc) and lookup is not _Lookup.UNDER_LOCK:
                    # Another copy of one of these event ids is stored (or was, since a
                    # lookup made before the lock): look again, under the lock this time.
                    lookup = _Lookup.UNDER_LOCK
                    self._careful_batches = _CAREFUL_BATCHES
                    continue
                if not isinstance(exc, _CONNECTION_ERRORS):
                    raise
                if attempt == _RETRIES:
                    raise StoreUnavailable(
                        f"append failed after {attempt} attempts: {exc}"
                    ) from exc
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def _append_once(
        self,
        prepared: Sequence[PreparedEvent],
        positions: Sequence[SourcePosition],
        before_commit: Callable[[list[AppendResult]], None] | None,
        lookup: _Lookup,
    ) -> list[AppendResult]:
        table = f"{self.datastore.schema}.{self.events_table_name}"
        with self.datastore.get_connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            results, fresh = self._classify(cur, table, prepared, lookup)
            new_streams = self._write(cur, table, fresh, results) if fresh else []
            outcomes = [r for r in results if r is not None]
            if before_commit is not None:
                # e.g. the Kafka consumer confirms conflicts' dead letters here, so the
                # positions below can share this transaction: if it raises, nothing commits.
                before_commit(outcomes)
            # The last statements travel together (one round trip, not three): every round
            # trip made while holding the append lock is time every other writer waits.
            with conn.pipeline():
                self._catalogue_streams(cur, new_streams)
                self._record_positions(cur, positions)
                if fresh:
                    cur.execute(f"NOTIFY {self.channel_name}")
        return outcomes

    def _classify(
        self,
        cur: psycopg.Cursor[Any],
        table: str,
        prepared: Sequence[PreparedEvent],
        lookup: _Lookup,
    ) -> tuple[list[AppendResult | None], list[tuple[int, PreparedEvent]]]:
        """Take the append lock, and split the batch into new events and duplicates or
        conflicts of stored ones (looked up as ``lookup`` says, see ``append``) or of
        earlier events of the same batch."""
        lock = "SELECT pg_advisory_xact_lock(%s)"
        if lookup is not _Lookup.BEFORE_LOCK:
            cur.execute(lock, (APPEND_LOCK_KEY,))
        # Keyed by the UUIDs' integers: a UUID's __hash__ is Python code, an int's is not,
        # and these dicts are touched several times per event.
        stored: dict[int, tuple[Any, ...]] = {}
        if lookup is not _Lookup.NONE:
            cur.execute(
                f"SELECT event_id, state, notification_id, stream, originator_version"
                f" FROM {table} WHERE event_id = ANY(%b)",
                ([p.event_id for p in prepared],),
                binary=True,
            )
            stored = {row[0].int: row for row in cur.fetchall()}
        if lookup is _Lookup.BEFORE_LOCK:
            cur.execute(lock, (APPEND_LOCK_KEY,))
        results: list[AppendResult | None] = [None] * len(prepared)
        fresh: list[tuple[int, PreparedEvent]] = []
        first_in_batch: dict[int, PreparedEvent] = {}
        for index, event in enumerate(prepared):
            key = event.event_id.int
            known = stored.get(key) if stored else None
            if known is not None:
                same = same_content(event.event, stored_event(bytes(known[1])))
                outcome = Outcome.DUPLICATE if same else Outcome.CONFLICT
                results[index] = AppendResult(event.event_id, outcome, known[2], known[3], known[4])
                continue
            earlier = first_in_batch.get(key)
            if earlier is not None:
                # The same event_id twice in one batch: the first one wins, as across batches.
                # Its position is filled in once written (see _write).
                same = same_content(event.event, earlier.event)
                outcome = Outcome.DUPLICATE if same else Outcome.CONFLICT
                results[index] = AppendResult(event.event_id, outcome, None, earlier.stream)
                continue
            first_in_batch[key] = event
            fresh.append((index, event))
        return results, fresh

    def _write(
        self,
        cur: psycopg.Cursor[Any],
        table: str,
        fresh: list[tuple[int, PreparedEvent]],
        results: list[AppendResult | None],
    ) -> list[tuple[Any, ...]]:
        """COPY the new events; return the rows that opened a stream."""
        recorded_at, last_id = self._draw_ids(cur, table, len(fresh))
        heads = self._stream_heads(
            cur, table, {event.stream: event.stream_uuid for _, event in fresh}
        )
        first_id = last_id - len(fresh) + 1
        recorded_json = canonical_json(
            recorded_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        )
        rows = []
        written: dict[int, AppendResult] = {}
        for offset, (index, event) in enumerate(fresh):
            notification_id = first_id + offset
            version, previous = heads.get(event.stream, (0, GENESIS_HASH))
            version += 1
            state = encode_state(
                event.event_json, event.origin_json, recorded_json, event.stream_json, version
            )
            digest = chain_hash(previous, state)
            heads[event.stream] = (version, digest)
            rows.append(
                (
                    event.stream_uuid, version, event.topic, state, notification_id,
                    event.event_id, event.stream, event.occurred_at, event.received_at,
                    recorded_at, digest,
                )
            )
            result = AppendResult(
                event.event_id, Outcome.APPENDED, notification_id, event.stream, version
            )
            results[index] = result
            written[event.event_id.int] = result
        with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_TYPES)
            for row in rows:
                copy.write_row(row)
        self._remember(heads, last_id)
        # In-batch duplicates point at the copy that was written.
        for index, pending in enumerate(results):
            if pending is not None and pending.notification_id is None:
                first = written[pending.event_id.int]
                results[index] = AppendResult(
                    pending.event_id, pending.outcome, first.notification_id, first.stream,
                    first.stream_version,
                )
        return [r for r in rows if r[1] == 1]

    def _stream_heads(
        self, cur: psycopg.Cursor[Any], table: str, streams: dict[str, UUID]
    ) -> dict[str, tuple[int, bytes]]:
        """Each stream's last version and hash (by stream key), from the cache when it is
        provably current. ``streams`` maps the batch's stream keys to their ids."""
        cached = self._heads
        heads = {s: cached[s] for s in streams if s in cached}
        missing = [s for s in streams if s not in heads]
        if missing:
            cur.execute(
                f"SELECT s.key, e.originator_version, e.hash"
                f" FROM unnest(%b::uuid[], %b::text[]) AS s(id, key)"
                f" CROSS JOIN LATERAL (SELECT originator_version, hash FROM {table}"
                f"  WHERE originator_id = s.id ORDER BY originator_version DESC LIMIT 1) AS e",
                ([streams[s] for s in missing], missing),
                binary=True,
            )
            heads.update((row[0], (row[1], bytes(row[2]))) for row in cur.fetchall())
        return heads

    def _draw_ids(
        self, cur: psycopg.Cursor[Any], table: str, count: int
    ) -> tuple[datetime, int]:
        """Draw ``count`` notification ids and the ledger clock, and drop the cached heads
        of streams other writers appended to since this one did; one round trip.

        Only writers holding the append lock draw from this sequence, so the block is
        contiguous and in commit order. For the same reason everything appended since this
        writer's last block has an id above it: the streams of those rows are exactly the
        cached heads that may be stale. With two consumers on disjoint partitions that is
        usually none of this batch's streams, which keeps the head lookup (an index probe
        per stream) off the locked path.
        """
        since = self._last_id_written
        sequence = f"'{table}_notification_id_seq'::regclass"
        # The id range is bounded on both sides and the statement planned with its values
        # (not a generic prepared plan), so the lookup is always a short index range scan:
        # a generic plan for "notification_id > $1" scans the whole table.
        cur.execute(
            f"SELECT s.last_value, CASE WHEN s.last_value - %(since)s::int8 <= %(limit)s::int8"
            f" THEN ARRAY(SELECT DISTINCT stream FROM {table}"
            f" WHERE notification_id > %(since)s::int8"
            f" AND notification_id <= %(since)s::int8 + %(limit)s::int8) END,"
            f" clock_timestamp(),"
            f" setval({sequence}, nextval({sequence}) + %(count)s::int8 - 1)"
            f" FROM {table}_notification_id_seq AS s",
            # With nothing cached to check (since is None), no scan at all: limit -1.
            {"since": since if since is not None else 0,
             "limit": _HEAD_SCAN_LIMIT if since is not None else -1, "count": count},
            prepare=False,
        )
        sequence_at, touched, recorded_at, last_id = cur.fetchone()  # type: ignore[misc]
        if since is None or touched is None:
            self._heads.clear()  # nothing known, or too much to look through
        elif sequence_at != since:
            for stream in touched:
                self._heads.pop(stream, None)
        return recorded_at, last_id

    @staticmethod
    def _catalogue_streams(cur: psycopg.Cursor[Any], new_streams: list[tuple[Any, ...]]) -> None:
        if not new_streams:
            return
        # One statement for all of them (a batch can open hundreds of streams): a statement
        # per row cost a round trip and a plan each.
        cur.execute(
            "INSERT INTO ledger_streams (stream, originator_id, kind, first_notification_id)"
            " SELECT * FROM unnest(%b::text[], %b::uuid[], %b::text[], %b::int8[])"
            " ON CONFLICT DO NOTHING",
            (
                [r[6] for r in new_streams],
                [r[0] for r in new_streams],
                [r[6].split(":", 1)[0] for r in new_streams],
                [r[4] for r in new_streams],
            ),
            binary=True,
        )

    def _remember(self, heads: dict[str, tuple[int, bytes]], last_id: int) -> None:
        # Cached as if committed; append() clears it when the transaction does not commit.
        for stream, head in heads.items():
            self._heads[stream] = head
            self._heads.move_to_end(stream)
        while len(self._heads) > _HEAD_CACHE_SIZE:
            self._heads.popitem(last=False)
        self._last_id_written = last_id

    @staticmethod
    def _record_positions(cur: psycopg.Cursor[Any], positions: Sequence[SourcePosition]) -> None:
        if not positions:
            return
        # One statement; ON CONFLICT DO UPDATE may touch a row only once per statement, so
        # a key given twice keeps its furthest offset (positions only move forward anyway).
        furthest: dict[tuple[str, str, int], int] = {}
        for p in positions:
            key = (p.consumer, p.topic, p.partition)
            furthest[key] = max(p.next_offset, furthest.get(key, p.next_offset))
        cur.execute(
            "INSERT INTO ledger_source_positions (consumer, topic, partition, next_offset)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::int4[], %b::int8[])"
            " ON CONFLICT (consumer, topic, partition) DO UPDATE"
            " SET next_offset = EXCLUDED.next_offset, updated_at = clock_timestamp()"
            " WHERE ledger_source_positions.next_offset < EXCLUDED.next_offset",
            (
                [k[0] for k in furthest],
                [k[1] for k in furthest],
                [k[2] for k in furthest],
                list(furthest.values()),
            ),
            binary=True,
        )

    def source_positions(self, consumer: str, topic: str) -> dict[int, int]:
        with self.datastore.get_connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            cur.execute(
                "SELECT partition, next_offset FROM ledger_source_positions"
                " WHERE consumer = %s AND topic = %s",
                (consumer, topic),
            )
            return {row[0]: row[1] for row in cur.fetchall()}
