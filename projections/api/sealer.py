"""The sealer: appends access records to the ledger as ``access.recorded`` events.

Requests write their access record to ``api_access_log`` (durable, append-only) and do not
wait for the hash chain; the sealer, in a process of its own (``ledger serve``) or a
background thread (embedded), appends new rows through ``EventStore.append`` within about
a second. Each event reuses its row's ``event_id``, so sealing twice (a crash between
append and progress, two API processes) is absorbed by the ledger's idempotency. Only one
sealer works at a time (advisory lock).

Progress (``api_access_seal.sealed_through``) must never pass a row that is not sealed yet.
Row ids are drawn before commit, so a lower id can become visible after a higher one. The
sealer remembers how far it has looked (``_through``) and the ids below that it did not
see (``_gaps``: an INSERT still in flight, or one rolled back); each pass reads only rows
above ``_through`` and the gaps, and the mark moves up to the lowest gap. A gap unseen for
``SETTLE`` is given up: by then every INSERT that drew it has long committed or failed.

A sealer that starts (or finds the mark moved by another process) knows nothing above the
mark: its first pass reads every row above it and asks the ledger which are sealed
already (an anti-join on the ledger's ``event_id`` index), so a restart re-appends nothing.
The steady state never repeats that join: it used to re-read and re-join the last
``SETTLE`` seconds of rows on every pass, work that grew with the request rate.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row

from ledger.store.types import Outcome
from projections.api.writer import API_SYSTEM, LedgerWriter, internal_event

log = logging.getLogger(__name__)

SEALER_LOCK_KEY = 7_406_221_020
SETTLE = timedelta(seconds=5)
BATCH = 500
# Ids the log's writers can hold in flight at once, with room to spare (256 a statement).
MAX_GAPS = 100_000

# Rows above what this sealer has looked at, and the gaps below it that may still commit.
_NEXT = (
    "SELECT a.*, false AS sealed FROM api_access_log a WHERE a.id > %(through)s"
    " OR a.id = ANY(%(gaps)s) ORDER BY a.id LIMIT %(limit)s"
)
# The same, for a sealer that knows nothing above the mark: which rows the ledger holds.
_NEXT_CHECKED = (
    "SELECT a.*, EXISTS (SELECT 1 FROM ledger_events e WHERE e.event_id = a.event_id)"
    " AS sealed FROM api_access_log a WHERE a.id > %(through)s OR a.id = ANY(%(gaps)s)"
    " ORDER BY a.id LIMIT %(limit)s"
)


def access_event(row: dict[str, Any]) -> Any:
    """The ``access.recorded`` event of one access-log row."""
    query = row["query"]
    if row["purpose"]:
        # The contract's access record has no purpose field; it travels as a query parameter.
        purpose = "purpose=" + quote(row["purpose"], safe="")
        query = f"{query}&{purpose}" if query else purpose
    facilities = row["facility_ids"]
    return internal_event({
        "event_id": str(row["event_id"]),
        "type": "access.recorded",
        "schema_version": 1,
        "occurred_at": row["occurred_at"].isoformat(),
        "source": {"system": API_SYSTEM, "kind": "other", "message_id": row["request_id"]},
        "subject": {"facility_id": facilities[0]} if len(facilities) == 1 else {},
        "correlation_id": row["request_id"],
        "data": {
            "key_id": row["key_id"], "role": row["role"],
            "endpoint": f"{row['method']} {row['endpoint']}", "query": query or None,
            "patient_ids": list(row["patient_ids"]), "outcome": row["outcome"],
            "status_code": row["status_code"],
        },
    })


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

    def seal_once(self) -> int:
        """Seal what is pending; return how many events were appended."""
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
        row = conn.execute("SELECT sealed_through FROM api_access_seal").fetchone()
        mark = int(row["sealed_through"]) if row else 0
        checked = self._through is None or self._through < mark
        if checked:  # nothing known above the mark: ask the ledger what it holds
            self._through, self._gaps = mark, {}
        through = self._through
        assert through is not None
        sealed = 0
        while True:
            rows = conn.execute(_NEXT_CHECKED if checked else _NEXT, {
                "through": through, "gaps": list(self._gaps), "limit": BATCH,
            }).fetchall()
            fresh = [r for r in rows if not r["sealed"]]
            if fresh:
                results = self.writer.append_sync([access_event(r) for r in fresh],
                                                  "api-sealer")
                sealed += sum(result.outcome == Outcome.APPENDED for result in results)
            through = self._advance(through, [r["id"] for r in rows])
            if len(rows) < BATCH:
                break
        self._through = through
        new_mark = min(self._gaps, default=through + 1) - 1
        if new_mark > mark:
            conn.execute("UPDATE api_access_seal SET sealed_through = %s", (new_mark,))
        return sealed

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
        self._through, self._gaps = None, {}

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
