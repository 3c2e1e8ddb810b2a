"""``ledger verify``: recompute every hash chain and checkpoint from the stored rows.

One pass over the events in global order (notification id), inside one read-only
REPEATABLE READ transaction so the events and the checkpoints are the same snapshot however
long the walk takes. For each event: the stream's next version must follow the previous one,
``SHA-256(previous hash || state)`` must equal the stored hash, and the stored record must
name the same stream, version, type and event id as its columns. Checkpoints are recomputed
as their ranges close; an exported checkpoint file (the auditor's outside copy) is compared
with what the database holds. Gaps in notification ids are not findings: rolled-back
transactions leave them.

Two depths (docs/tamper-evidence.md §5):

* **default** — hashes, chains, versions, checkpoints, and the columns against the record by
  byte comparison with what ``chain.encode_state`` wrote (the record ends with
  ``,"stream":<key>,"stream_version":<n>}``; the envelope ends with ``,"type":<topic>}``
  just before ``,"origin":``; ``"event_id":"<id>"`` is the record's only event id). A record
  whose bytes do not frame that way is decoded as JSON to say what is wrong with it, so a
  garbled row is still reported as undecodable rather than as a mere mismatch.
* **deep** — additionally decodes every record as JSON and re-validates its envelope against
  the contract: what it adds is catching a record that is not a valid event even though
  someone recomputed its hash (and the checkpoints must then also disagree with an exported
  copy, which the default already checks). About four times slower (bench/verify.py
  --deep): pydantic validation dominates it.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from ledger.errors import ContractError
from ledger.store.chain import GENESIS_HASH, canonical_json
from ledger.store.checkpoints import CHECKPOINT_GENESIS, Checkpoint, load_checkpoints
from ledger.store.merkle import merkle_root
from ledger.store.streams import stream_id

# Rows per page. Keyset pages with a LIMIT are always an index scan in notification order
# (one unbounded ORDER BY over a large table may be planned as a sequential scan and a sort
# to disk); each page is one round trip, so the size only needs to dwarf the latency.
_PAGE = 20_000

# Binary results: bytea arrives as the raw bytes (no hex text to decode) and the stream id
# as its 16 bytes, so no uuid.UUID is built per row; psycopg loads a whole page in C.
_PAGE_QUERY = (
    "SELECT notification_id, uuid_send(originator_id), originator_version, topic,"
    " event_id::text, stream, state, hash FROM ledger_events WHERE notification_id > %s"
    " ORDER BY notification_id LIMIT %s"
)

_CHAIN_START = (0, GENESIS_HASH)  # version and hash "before" a stream's first event
_NEVER = 2**63  # above any bigserial: "no checkpoint boundary ahead"
_ORIGIN_KEY = b',"origin":'
_EVENT_ID_KEY = b'"event_id":"'


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


Row = tuple[int, bytes, int, str, str, str, bytes, bytes]


def _pages(conn: psycopg.Connection[Any]) -> Iterator[list[Row]]:
    """Keyset pages, the next one fetched on a thread while the caller checks this one.

    PostgreSQL reads and sends a page while Python hashes the previous one: on two cores the
    walk then costs about the larger of the two instead of their sum. The thread owns the
    connection until the iterator is exhausted or closed (the caller must not use it
    meanwhile); psycopg releases the GIL while it waits on the socket.
    """
    ahead: queue.Queue[list[Row] | BaseException] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            cur = conn.cursor(binary=True)
            after = 0
            while not stop.is_set():
                cur.execute(_PAGE_QUERY, (after, _PAGE), prepare=True)
                page: list[Row] = cur.fetchall()  # type: ignore[assignment]
                ahead.put(page)
                if len(page) < _PAGE:
                    return
                after = page[-1][0]
        except BaseException as exc:  # handed to the caller, which re-raises it
            ahead.put(exc)

    thread = threading.Thread(target=fetch, name="verify-fetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if isinstance(item, BaseException):
                raise item
            if item:
                yield item
            if len(item) < _PAGE:
                return
    finally:
        stop.set()
        while thread.is_alive():  # unblock a fetcher waiting to hand over a page
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.05)
        thread.join()


def verify(
    conninfo: str,
    *,
    exported: list[Checkpoint] | None = None,
    progress: Callable[[int, int], None] | None = None,
    deep: bool = False,
) -> VerifyReport:
    report = VerifyReport()
    with psycopg.connect(conninfo) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            checkpoints = load_checkpoints(conn)
            # An estimate is enough for a progress bar and costs nothing on a large table.
            estimate = conn.execute(
                "SELECT GREATEST(reltuples::bigint, 0) FROM pg_class"
                " WHERE oid = 'ledger_events'::regclass"
            ).fetchone()
            total = int(estimate[0]) if estimate else 0
            _walk(_pages(conn), checkpoints, report, progress, total, deep)
        report.checkpoints = len(checkpoints)
    if exported is not None:
        _compare_with_export(checkpoints, exported, report)
    return report


def _walk(
    pages: Iterator[list[Row]],
    checkpoints: list[Checkpoint],
    report: VerifyReport,
    progress: Callable[[int, int], None] | None,
    total: int,
    deep: bool,
) -> None:
    """The hot loop: everything per event stays in locals and C-level bytes operations."""
    sha256 = hashlib.sha256
    problems = report.problems
    # originator_id (16 bytes) -> (version, hash) of the last event seen in that stream.
    heads: dict[bytes, tuple[int, bytes]] = {}
    # stream key -> (its expected originator id, the record's ending up to the version).
    expected: dict[str, tuple[bytes, bytes]] = {}
    type_tails: dict[str, bytes] = {}
    walker = _CheckpointWalker(checkpoints, report)
    boundary, anchoring = walker.boundary, walker.anchoring
    leaves = walker.leaves
    range_heads = walker.heads
    id_key_len = len(_EVENT_ID_KEY)
    verified = 0
    for page in pages:
        for row in page:
            position, originator, version, topic, event_id, stream, state, stored = row
            if position > boundary:
                walker.close_through(position)
                boundary, anchoring = walker.boundary, walker.anchoring
                leaves, range_heads = walker.leaves, walker.heads
            previous_version, previous_hash = heads.get(originator, _CHAIN_START)
            if version != previous_version + 1:
                what = "missing" if version > previous_version + 1 else "out of order"
                problems.append(Problem(
                    "version_gap",
                    f"expected version {previous_version + 1}, found {version}: events {what}",
                    stream, version, position))
            if sha256(previous_hash + state).digest() != stored:
                problems.append(Problem("hash_mismatch",
                                        "recomputed hash differs from stored hash",
                                        stream, version, position))
            # Continue the chain from the stored hash so one bad row yields one finding, not
            # a cascade. One tuple serves as chain head and as checkpoint head.
            head = (version, stored)
            heads[originator] = head

            framing = expected.get(stream)
            if framing is None:
                framing = expected[stream] = (
                    stream_id(stream).bytes, b',"stream":' + canonical_json(stream)
                    + b',"stream_version":')
            type_tail = type_tails.get(topic)
            if type_tail is None:
                type_tail = type_tails[topic] = b',"type":' + canonical_json(topic) + b"}"
            # Each test is a C-level bytes search; together they are what the decoded check
            # compares (see the module docstring). Any doubt goes to the exact, decoding
            # check.
            origin_at = state.rfind(_ORIGIN_KEY)
            id_at = state.find(_EVENT_ID_KEY) + id_key_len
            if deep or not (
                originator == framing[0]
                and state.endswith(b"%b%d}" % (framing[1], version))
                and origin_at > 0
                and state.endswith(type_tail, 0, origin_at)
                and id_at >= id_key_len
                and state.startswith(b'%b"' % event_id.encode(), id_at)
                and state.find(_EVENT_ID_KEY, id_at) < 0
            ):
                _decode_check(row, framing[0], deep, problems)

            if anchoring:
                leaves.append(stored)
                range_heads[stream] = head
            else:
                report.unanchored_events += 1
        verified += len(page)
        if progress:
            progress(verified, total)
    walker.finish()
    report.verified_events = verified
    report.streams = len(heads)


def _decode_check(row: Row, expected_id: bytes, deep: bool, problems: list[Problem]) -> None:
    """The slow, exact check: decode the record and compare it with the columns (and, deep,
    with the contract). Runs for every row when deep, else only for rows whose bytes did not
    frame as expected — so it names what is wrong."""
    position, originator, version, topic, event_id, stream, state, _ = row
    try:
        record = orjson.loads(state)
        event = record["event"]
        consistent = (
            record["stream"] == stream
            and record["stream_version"] == version
            and event["type"] == topic
            and event["event_id"] == event_id
            and expected_id == originator
        )
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(Problem("undecodable", f"stored record cannot be decoded: {exc}",
                                stream, version, position))
        return
    if not consistent:
        problems.append(Problem("record_mismatch", "stored record disagrees with its columns",
                                stream, version, position))
    if deep:
        # Imported here: the contract models are only needed on the deep path.
        from ledger.contract import parse_event

        try:
            # Validating JSON bytes takes pydantic's fast path (half the time of a dict).
            parse_event(orjson.dumps(event), allow_internal=True)
        except ContractError as exc:
            problems.append(Problem("contract_violation",
                                    f"stored event fails the contract: {exc}",
                                    stream, version, position))


class _CheckpointWalker:
    """Collects event hashes per checkpoint range while the main pass walks the events.

    ``boundary`` is the last notification id of the checkpoint being filled; once every
    checkpoint is closed, ``anchoring`` is false (later events are not yet anchored) and the
    boundary is unreachable. The hot loop appends to ``leaves`` and ``heads`` directly and
    calls ``close_through`` when it passes the boundary.
    """

    def __init__(self, checkpoints: list[Checkpoint], report: VerifyReport):
        self.pending = list(reversed(checkpoints))
        self.report = report
        self.leaves: list[bytes] = []
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.previous_hash = CHECKPOINT_GENESIS
        self.previous_last = 0
        self.boundary = 0
        self.anchoring = False
        self._next_range()

    def _next_range(self) -> None:
        self.anchoring = bool(self.pending)
        self.boundary = self.pending[-1].last_notification_id if self.pending else _NEVER

    def close_through(self, position: int) -> None:
        while self.pending and position > self.pending[-1].last_notification_id:
            self._close(self.pending.pop())
        self._next_range()

    def finish(self) -> None:
        while self.pending:
            self._close(self.pending.pop())
        self._next_range()

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
        heads = {stream: {"version": version, "hash": digest.hex()}
                 for stream, (version, digest) in self.heads.items()}
        if heads != checkpoint.heads:
            problems.append("the stream heads in its range differ")
        for text in problems:
            self.report.problems.append(
                Problem("checkpoint_mismatch", f"checkpoint {checkpoint.checkpoint_id}: {text}",
                        notification_id=checkpoint.last_notification_id)
            )
        self.previous_hash = checkpoint.checkpoint_hash
        self.previous_last = checkpoint.last_notification_id
        # New containers, not clear(): the hot loop re-reads them after every close.
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
