"""``ledger verify``: recompute every hash chain and checkpoint from the stored rows.

One pass over the events in global order (notification id). For each event: the stream's
next version must follow the previous one, the stored record must name the same stream,
version, type and event id as its columns, and ``SHA-256(previous hash || state)`` must
equal the stored hash. Checkpoints are recomputed as their ranges close; an exported
checkpoint file (the auditor's outside copy) is compared with what the database holds.
Gaps in notification ids are not findings: rolled-back transactions leave them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.rows import tuple_row

from ledger.store.chain import GENESIS_HASH
from ledger.store.checkpoints import CHECKPOINT_GENESIS, Checkpoint, load_checkpoints
from ledger.store.merkle import merkle_root
from ledger.store.streams import stream_id

_FETCH = 10_000


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    stream: str | None = None
    version: int | None = None
    notification_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class VerifyReport:
    verified_events: int = 0
    streams: int = 0
    checkpoints: int = 0
    unanchored_events: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "verified_events": self.verified_events,
            "streams": self.streams,
            "checkpoints": self.checkpoints,
            "unanchored_events": self.unanchored_events,
            "problems": len(self.problems),
            "ok": self.ok,
            "first_problem": self.problems[0].as_dict() if self.problems else None,
        }


@dataclass
class _StreamHead:
    key: str
    version: int
    hash: bytes


def _rows(conn: psycopg.Connection[Any]) -> Iterator[tuple[Any, ...]]:
    # Keyset pages keep memory flat however large the table is, with one round trip per page.
    cur = conn.cursor(row_factory=tuple_row)
    after = 0
    while True:
        cur.execute(
            "SELECT notification_id, originator_id::text, originator_version, topic,"
            " event_id::text, stream, state, hash FROM ledger_events"
            " WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
            (after, _FETCH),
        )
        rows = cur.fetchall()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def verify(
    conninfo: str,
    *,
    exported: list[Checkpoint] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    report = VerifyReport()
    with psycopg.connect(conninfo) as conn:
        checkpoints = load_checkpoints(conn)
        # An estimate is enough for a progress bar and costs nothing on a large table.
        estimate = conn.execute(
            "SELECT GREATEST(reltuples::bigint, 0) FROM pg_class"
            " WHERE oid = 'ledger_events'::regclass"
        ).fetchone()
        total = int(estimate[0]) if estimate else 0
        heads: dict[str, _StreamHead] = {}
        stream_ids: dict[str, str] = {}
        ranges = _CheckpointWalker(checkpoints, report)
        for row in _rows(conn):
            _check_event(row, heads, report, stream_ids)
            ranges.add(row[0], bytes(row[7]), row[5], row[2])
            report.verified_events += 1
            if progress and report.verified_events % 10_000 == 0:
                progress(report.verified_events, total)
        ranges.finish()
        report.streams = len(heads)
        report.checkpoints = len(checkpoints)
    if exported is not None:
        _compare_with_export(checkpoints, exported, report)
    return report


def _check_event(
    row: tuple[Any, ...], heads: dict[str, _StreamHead], report: VerifyReport,
    stream_ids: dict[str, str],
) -> None:
    position, originator_id, version, topic, event_id, stream, state, stored_hash = row
    state = bytes(state)
    stored_hash = bytes(stored_hash)
    head = heads.get(originator_id)
    expected = head.version + 1 if head else 1
    previous = head.hash if head else GENESIS_HASH
    if version != expected:
        what = "missing" if version > expected else "out of order"
        report.problems.append(
            Problem(
                "version_gap",
                f"expected version {expected}, found {version}: events {what}",
                stream, version, position,
            )
        )
    if hashlib.sha256(previous + state).digest() != stored_hash:
        report.problems.append(
            Problem("hash_mismatch", "recomputed hash differs from stored hash",
                    stream, version, position)
        )
    expected_id = stream_ids.get(stream)
    if expected_id is None:
        expected_id = stream_ids[stream] = str(stream_id(stream))
    try:
        record = orjson.loads(state)
        consistent = (
            record["stream"] == stream
            and record["stream_version"] == version
            and record["event"]["type"] == topic
            and record["event"]["event_id"] == event_id
            and expected_id == originator_id
        )
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(
            Problem("undecodable", f"stored record cannot be decoded: {exc}",
                    stream, version, position)
        )
    else:
        if not consistent:
            report.problems.append(
                Problem("record_mismatch", "stored record disagrees with its columns",
                        stream, version, position)
            )
    # Continue the chain from the stored hash so one bad row yields one finding, not a cascade.
    heads[originator_id] = _StreamHead(stream, version, stored_hash)


class _CheckpointWalker:
    """Collects event hashes per checkpoint range while the main pass walks the events."""

    def __init__(self, checkpoints: list[Checkpoint], report: VerifyReport):
        self.pending = list(checkpoints)
        self.report = report
        self.leaves: list[bytes] = []
        self.heads: dict[str, dict[str, Any]] = {}
        self.previous_hash = CHECKPOINT_GENESIS
        self.previous_last = 0
        self.last_position = 0

    def add(self, position: int, event_hash: bytes, stream: str, version: int) -> None:
        while self.pending and position > self.pending[0].last_notification_id:
            self._close(self.pending.pop(0))
        self.last_position = position
        if self.pending:
            self.leaves.append(event_hash)
            self.heads[stream] = {"version": version, "hash": event_hash.hex()}
        else:
            self.report.unanchored_events += 1

    def finish(self) -> None:
        while self.pending:
            self._close(self.pending.pop(0))

    def _close(self, checkpoint: Checkpoint) -> None:
        problems = []
        if checkpoint.after_notification_id != self.previous_last:
            problems.append("its range does not start where the previous checkpoint ended")
        if checkpoint.previous_hash != self.previous_hash:
            problems.append("it does not chain to the previous checkpoint")
        if checkpoint.computed_hash() != checkpoint.checkpoint_hash:
            problems.append("its own hash does not match its content")
        if len(self.leaves) != checkpoint.event_count:
            problems.append(
                f"it covers {checkpoint.event_count} events, the database has {len(self.leaves)}"
            )
        if merkle_root(self.leaves) != checkpoint.merkle_root:
            problems.append("the Merkle root of the events in its range differs")
        if self.heads != checkpoint.heads:
            problems.append("the stream heads in its range differ")
        for text in problems:
            self.report.problems.append(
                Problem("checkpoint_mismatch", f"checkpoint {checkpoint.checkpoint_id}: {text}",
                        notification_id=checkpoint.last_notification_id)
            )
        self.previous_hash = checkpoint.checkpoint_hash
        self.previous_last = checkpoint.last_notification_id
        self.leaves = []
        self.heads = {}


def _compare_with_export(
    stored: list[Checkpoint], exported: list[Checkpoint], report: VerifyReport
) -> None:
    by_id = {c.checkpoint_id: c for c in stored}
    for outside in exported:
        inside = by_id.get(outside.checkpoint_id)
        if inside is None:
            report.problems.append(
                Problem("checkpoint_missing",
                        f"checkpoint {outside.checkpoint_id} of the exported file is not in the"
                        f" database", notification_id=outside.last_notification_id)
            )
            _name_streams(outside, None, report)
        elif inside.checkpoint_hash != outside.checkpoint_hash:
            report.problems.append(
                Problem("checkpoint_rewritten",
                        f"checkpoint {outside.checkpoint_id} differs from the exported file",
                        notification_id=outside.last_notification_id)
            )
            _name_streams(outside, inside, report)


def _name_streams(outside: Checkpoint, inside: Checkpoint | None, report: VerifyReport) -> None:
    """Point at the streams whose heads the exported checkpoint knew otherwise."""
    inside_heads = inside.heads if inside else {}
    for stream, head in sorted(outside.heads.items()):
        if inside_heads.get(stream) != head:
            now = inside_heads.get(stream)
            report.problems.append(
                Problem("stream_differs_from_export",
                        f"exported checkpoint {outside.checkpoint_id} records version"
                        f" {head['version']} (hash {head['hash'][:16]}…); database has"
                        f" {('version ' + str(now['version'])) if now else 'no such head'}",
                        stream, head["version"], outside.last_notification_id)
            )
