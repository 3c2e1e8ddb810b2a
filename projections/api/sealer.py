"""The sealer: seals new access-log rows into the access chain, anchored in the ledger.

Requests write their access record to ``api_access_log`` (durable, append-only) and do not
wait for any hash chain; the sealer, in a process of its own (``ledger serve``) or a
background thread (embedded), seals the new rows within about a second: for each batch of
up to ``BATCH`` rows, one row of ``api_access_seals`` (the ids, the Merkle root of their
``access.recorded`` events, the link to the previous seal) and one ``access.sealed`` event
in the ledger that pins it (``ledger.store.access_seals`` defines the hashes; ``ledger
verify`` recomputes them). One ledger event per batch instead of one per request: the
per-request appends were most of the ledger's volume and, on a small machine, the database
work that lengthened every request's tail. Only one sealer works at a time (advisory lock).

Progress (``api_access_seal.sealed_through``) must never pass a row that is not sealed yet.
Row ids are drawn before commit, so a lower id can become visible after a higher one. The
sealer remembers how far it has looked (``_through``) and the ids below that it did not
see (``_gaps``: an INSERT still in flight, or one rolled back); each pass reads only rows
above ``_through`` and the gaps, and the mark moves up to the lowest gap. A gap unseen for
``SETTLE`` is given up: by then every INSERT that drew it has long committed or failed.

A sealer that starts, failed, or finds that another process moved the mark or sealed since
its last pass knows nothing above the mark: it first anchors the newest seal if a crash
left it unanchored (the seal row is written first, its ledger event second, and the
event's content is fixed by the row, so anchoring twice is an absorbed duplicate), then
reads which ids above the mark the seals already hold, so a restart seals nothing twice.
Should two sealers still race, the seal ids' primary key refuses the second seal of a
number, and that sealer starts over from what the database holds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger.ids import uuid7
from ledger.store.access_seals import RECORD_COLUMNS, SEAL_COLUMNS, Seal
from projections.api.writer import LedgerWriter

log = logging.getLogger(__name__)

SEALER_LOCK_KEY = 7_406_221_020
SETTLE = timedelta(seconds=5)
BATCH = 500
# Ids the log's writers can hold in flight at once, with room to spare (256 a statement).
MAX_GAPS = 100_000

# Rows above what this sealer has looked at, and the gaps below it that may still commit.
_NEXT = (
    f"SELECT {RECORD_COLUMNS} FROM api_access_log WHERE id > %(through)s"
    " OR id = ANY(%(gaps)s) ORDER BY id LIMIT %(limit)s"
)
# The ids above the mark that seals hold already (a restart after a seal, before the mark).
_SEALED_ABOVE = (
    "SELECT unnest(record_ids) AS id FROM api_access_seals WHERE last_record_id > %s"
)
# The mark, and the newest seal's id: a seal this process did not make means another sealer
# took a turn (the advisory lock is released between passes).
_PROGRESS = (
    "SELECT sealed_through, (SELECT max(seal_id) FROM api_access_seals) AS newest"
    " FROM api_access_seal"
)
_LAST_SEAL = f"SELECT {SEAL_COLUMNS} FROM api_access_seals ORDER BY seal_id DESC LIMIT 1"
_INSERT_SEAL = (
    "INSERT INTO api_access_seals (seal_id, record_ids, first_record_id, last_record_id,"
    " records_root, previous_hash, seal_hash, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    " RETURNING sealed_at"
)
_ANCHORED = "SELECT 1 FROM ledger_events WHERE event_id = %s"


class AuditSealer:
    def __init__(self, conninfo: str, writer: LedgerWriter, interval: float = 1.0):
        self.conninfo = conninfo
        self.writer = writer
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        # Every row with an id up to `_through` is sealed, except the `_gaps` (id -> when
        # first missed, monotonic seconds). None: nothing is known (start, or a failure).
        self._through: int | None = None
        self._gaps: dict[int, float] = {}
        # The newest seal (the next one links to it); None: no seal yet, or not read yet.
        self._last: Seal | None = None

    def seal_once(self) -> int:
        """Seal what is pending; return how many access records this pass sealed."""
        conn = self._connection()
        try:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok",
                                  (SEALER_LOCK_KEY,)).fetchone()
            if not locked or not locked["ok"]:
                return 0  # another process is sealing
            sealed = self._seal(conn)
            # Released after each pass, so a sealer of another process can take a turn.
            conn.execute("SELECT pg_advisory_unlock(%s)", (SEALER_LOCK_KEY,))
        except BaseException:
            # Closing ends the session, and the lock with it; the next pass reconnects and
            # starts from the mark (what an interrupted pass appended is found sealed).
            self.close()
            raise
        return sealed

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        # Kept between passes: a new connection every second cost a backend start and cold
        # catalogue caches each time, a burst of work beside the requests being served.
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True, row_factory=dict_row)
        return self._conn

    def _seal(self, conn: psycopg.Connection[dict[str, Any]]) -> int:
        row = conn.execute(_PROGRESS).fetchone()
        mark = int(row["sealed_through"]) if row else 0
        newest = row["newest"] if row else None
        sealed_above: set[int] = set()
        if self._through is None or self._through < mark or newest != (
                self._last.seal_id if self._last else None):
            # Nothing known above the mark, or another process sealed since this one's last
            # pass: what do the seals hold, and is the newest one anchored in the ledger?
            self._through, self._gaps = mark, {}
            last = conn.execute(_LAST_SEAL).fetchone()
            self._last = Seal.from_row(last) if last else None
            if self._last is not None and not conn.execute(
                    _ANCHORED, (self._last.event_id,)).fetchone():
                self._anchor(self._last)
            sealed_above = {r["id"] for r in conn.execute(_SEALED_ABOVE, (mark,))}
        through = self._through
        assert through is not None
        sealed = 0
        while True:
            rows = conn.execute(_NEXT, {
                "through": through, "gaps": list(self._gaps), "limit": BATCH,
            }).fetchall()
            fresh = [r for r in rows if r["id"] not in sealed_above]
            if fresh:
                self._seal_rows(conn, fresh)
                sealed += len(fresh)
            through = self._advance(through, [r["id"] for r in rows])
            if len(rows) < BATCH:
                break
        self._through = through
        new_mark = min(self._gaps, default=through + 1) - 1
        if new_mark > mark:
            conn.execute("UPDATE api_access_seal SET sealed_through = %s", (new_mark,))
        return sealed

    def _seal_rows(self, conn: psycopg.Connection[dict[str, Any]],
                   rows: list[dict[str, Any]]) -> None:
        """One seal over ``rows`` (ascending ids): its row first, then its ledger anchor."""
        seal = Seal.of(self._last, rows, uuid7())
        written = conn.execute(_INSERT_SEAL, (
            seal.seal_id, list(seal.record_ids), seal.record_ids[0], seal.record_ids[-1],
            seal.records_root, seal.previous_hash, seal.seal_hash, seal.event_id,
        )).fetchone()
        assert written is not None
        seal = replace(seal, sealed_at=written["sealed_at"])
        self._last = seal
        self._anchor(seal)

    def _anchor(self, seal: Seal) -> None:
        self.writer.append_sync([seal.anchor_event()], f"api-sealer:seal:{seal.seal_id}")

    def _advance(self, through: int, ids: list[int]) -> int:
        """Record a batch's rows (ids in order) as sealed; return the new ``_through``."""
        now = time.monotonic()
        gaps = self._gaps
        for seen in ids:
            gaps.pop(seen, None)
        highest = max(through, ids[-1]) if ids else through
        if highest - through - len(ids) > MAX_GAPS:
            # More ids missing than writers could ever hold in flight: the sequence jumped
            # (set by hand). What is missing was never drawn; there is nothing to wait for.
            log.warning("access log ids jump from %s to %s; not waiting on the ids between",
                        through, highest)
        else:
            for gap in set(range(through + 1, highest + 1)).difference(ids):
                gaps[gap] = now
        settle = SETTLE.total_seconds()
        for gap in [g for g, since in gaps.items() if now - since > settle]:
            del gaps[gap]  # drawn and never committed (rolled back): nothing to seal
        return highest

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._through, self._gaps, self._last = None, {}, None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.seal_once()
            except Exception:  # keep trying: rows stay in the log until they are sealed
                log.exception("sealing access records failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.seal_once()  # leave nothing behind that can be sealed now
        except Exception:
            log.exception("final sealing pass failed; the access log keeps the records")
        finally:
            self.close()
