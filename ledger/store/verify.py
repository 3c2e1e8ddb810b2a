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
  just before ``,"origin":``; ``"event_id":"<id>"`` is the record's only event id). The clock
  columns are compared with the record's timestamps as instants (the record keeps the
  sender's offset): the timestamp strings sit at known places (``occurred_at``, then
  ``received_at`` when present, right after the envelope's ``event_id`` and before its
  ``schema_version`` in sorted-key order; ``recorded_at`` right before the record's
  ``,"stream":`` tail), so only those few bytes are parsed (``datetime.fromisoformat``),
  not the record, and recorded_at once per append. A record whose bytes do not frame that
  way, or whose clocks differ, is decoded as JSON to say what is wrong with it, so a garbled
  row is still reported as undecodable rather than as a mere mismatch, and a shifted clock
  column is named with both values.
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
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from ledger.errors import ContractError
from ledger.store.chain import GENESIS_HASH, canonical_json
from ledger.store.checkpoints import Checkpoint, load_checkpoints
from ledger.store.streams import stream_id
from ledger.store.verify_access import verify_access_log
from ledger.store.verify_checkpoints import CheckpointWalker, compare_with_export
from ledger.store.verify_report import Problem, VerifyReport

# Rows per page. Keyset pages with a LIMIT are always an index scan in notification order
# (one unbounded ORDER BY over a large table may be planned as a sequential scan and a sort
# to disk); each page is one round trip, so the size only needs to dwarf the latency.
_PAGE = 20_000

# Binary results: bytea arrives as the raw bytes (no hex text to decode) and the stream id
# as its 16 bytes, so no uuid.UUID is built per row; psycopg loads a whole page in C. The
# clocks arrive as datetimes in UTC (the transaction sets its time zone to UTC so that
# psycopg attaches ``datetime.UTC`` itself, see ``verify``).
_PAGE_QUERY = (
    "SELECT notification_id, uuid_send(originator_id), originator_version, topic,"
    " event_id::text, stream, state, hash, occurred_at, received_at, recorded_at"
    " FROM ledger_events WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
)

_CHAIN_START = (0, GENESIS_HASH)  # version and hash "before" a stream's first event
_ORIGIN_KEY = b',"origin":'
_EVENT_ID_KEY = b'"event_id":"'
# The envelope's clocks as encode_state writes them: in sorted-key order occurred_at
# follows event_id, then received_at when present, then schema_version (no other envelope
# field sorts between them, and the contract refuses unknown fields). One C-level match
# right after the event id finds both strings; a timestamp string holds no quote. A record
# that does not match (say a later contract adds a field in between) gets the exact check.
_ENVELOPE_CLOCKS = re.compile(
    rb'","occurred_at":"([^"]+)"(?:,"received_at":"([^"]+)")?,"schema_version":'
)
_RECORDED_KEY = b',"recorded_at":"'


Row = tuple[
    int, bytes, int, str, str, str, bytes, bytes, datetime, datetime | None, datetime
]


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
            # Clock columns then load as datetimes in datetime.UTC, the very object that
            # fromisoformat gives a "Z" or "+00:00" timestamp: comparing two datetimes with
            # the same tzinfo compares fields (~20 ns), with different ones (the server's
            # default "Etc/UTC" is a ZoneInfo) it goes through utcoffset() (~1.5 µs).
            conn.execute("SET LOCAL TIME ZONE 'UTC'")
            checkpoints = load_checkpoints(conn)
            # An estimate is enough for a progress bar and costs nothing on a large table.
            estimate = conn.execute(
                "SELECT GREATEST(reltuples::bigint, 0) FROM pg_class"
                " WHERE oid = 'ledger_events'::regclass"
            ).fetchone()
            total = int(estimate[0]) if estimate else 0
            _walk(_pages(conn), checkpoints, report, progress, total, deep)
            # The read audit's seals and records, in the same snapshot as their anchors.
            verify_access_log(conn, report)
        report.checkpoints = len(checkpoints)
    if exported is not None:
        compare_with_export(checkpoints, exported, report)
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
    walker = CheckpointWalker(checkpoints, report)
    boundary, anchoring = walker.boundary, walker.anchoring
    leaves = walker.leaves
    range_heads = walker.heads
    id_key_len = len(_EVENT_ID_KEY)
    clocks_at = _ENVELOPE_CLOCKS.match
    instant = _instant
    # One append stamps all its events with one recorded_at: the previous row's member
    # (``,"recorded_at":"…"``) and its instant, so a run of rows from one append costs one
    # bytes comparison each, and the timestamp is parsed once per append.
    recorded_member, recorded_instant = b"\0", None
    verified = 0
    for page in pages:
        for row in page:
            (position, originator, version, topic, event_id, stream, state, stored,
             occurred, received, recorded) = row
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
            tail = b"%b%d}" % (framing[1], version)
            framed = (
                originator == framing[0]
                and state.endswith(tail)
                and origin_at > 0
                and state.endswith(type_tail, 0, origin_at)
                and id_at >= id_key_len
                and state.startswith(b'%b"' % event_id.encode(), id_at)
                and state.find(_EVENT_ID_KEY, id_at) < 0
            )
            if framed and not deep:  # deep decodes every record, clocks included
                # The clocks against the columns, parsing only the timestamps' bytes, found
                # from the framing just checked (the event id's closing quote; the tail). A
                # ValueError (no timestamp there) sends the row to the exact check like any
                # other doubt.
                try:
                    found = clocks_at(state, id_at + len(event_id))
                    if found is None:
                        framed = False
                    else:
                        occurred_text, received_text = found.groups()
                        framed = instant(occurred_text) == occurred and (
                            received is None if received_text is None
                            else instant(received_text) == received)
                    if framed:
                        end = len(state) - len(tail)  # recorded_at's member ends here
                        if not state.endswith(recorded_member, 0, end):
                            start = state.rfind(_RECORDED_KEY, origin_at, end)
                            if start < 0 or state[end - 1] != 0x22:  # '"'
                                raise ValueError("no recorded_at member before the tail")
                            recorded_instant = instant(
                                state[start + len(_RECORDED_KEY):end - 1])
                            recorded_member = state[start:end]
                        framed = recorded_instant == recorded
                except ValueError:
                    framed = False
            if deep or not framed:
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


def _instant(text: bytes) -> datetime:
    """The instant an RFC 3339 timestamp (ASCII bytes) names, as a datetime in UTC.

    In UTC so that comparing it with a clock column is a field comparison (see ``verify``).
    ValueError for anything that is not a timestamp with an offset: a naive one names no
    instant (and ``astimezone`` would take it as the verifier's local time).
    """
    at = datetime.fromisoformat(text.decode())  # C; accepts "Z" since Python 3.11
    if at.tzinfo is UTC:  # "Z" and "+00:00" both give this very object
        return at
    if at.tzinfo is None:
        raise ValueError("a timestamp without UTC offset")
    return at.astimezone(UTC)


def _decode_check(row: Row, expected_id: bytes, deep: bool, problems: list[Problem]) -> None:
    """The slow, exact check: decode the record and compare it with the columns (and, deep,
    with the contract). Runs for every row when deep, else only for rows whose bytes did not
    frame as expected or whose clocks differ — so it names what is wrong."""
    (position, originator, version, topic, event_id, stream, state, _,
     occurred, received, recorded) = row
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
    # Column by column, so the finding says which clock moved and from what to what.
    for column, held, written in (
        ("occurred_at", occurred, event.get("occurred_at")),
        ("received_at", received, event.get("received_at")),
        ("recorded_at", recorded, record.get("recorded_at")),
    ):
        if _written_instant(written) != held:
            problems.append(Problem(
                "clock_mismatch",
                f"column {column} is {_column_text(held)} but the stored record has"
                f" {'no ' + column if written is None else written}",
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


def _written_instant(value: Any) -> Any:
    """A record's timestamp as an instant to compare with a column: None when absent (so
    only a NULL column equals it); anything that is no timestamp with an offset is returned
    as it is, and equals no column value."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _instant(value.encode())
    return value


def _column_text(value: datetime | None) -> str:
    return "NULL" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
