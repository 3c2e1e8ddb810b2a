"""The sealer: appends access records to the ledger as ``access.recorded`` events.

Requests write their access record to ``api_access_log`` (durable, append-only) and do not
wait for the hash chain; the sealer, a background thread, appends new rows through
``EventStore.append`` within about a second. Each event reuses its row's ``event_id``, so
sealing twice (a crash between append and progress, two API processes) is absorbed by the
ledger's idempotency. Only one sealer works at a time (advisory lock).

Progress (``api_access_seal.sealed_through``) must never pass a row that is not sealed yet.
Row ids are drawn before commit, so a lower id can become visible after a higher one; each
pass therefore selects every unsealed row above the progress mark (anti-join on the
ledger's ``event_id`` index) and moves the mark only over rows older than ``SETTLE``, by
which time every INSERT that drew a lower id has long committed.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row

from projections.api.writer import API_SYSTEM, LedgerWriter, internal_event

log = logging.getLogger(__name__)

SEALER_LOCK_KEY = 7_406_221_020
SETTLE = timedelta(seconds=5)
BATCH = 500

_UNSEALED = (
    "SELECT a.*, clock_timestamp() - a.recorded_at > %s AS settled FROM api_access_log a"
    " WHERE a.id > %s AND NOT EXISTS (SELECT 1 FROM ledger_events e"
    "  WHERE e.event_id = a.event_id) ORDER BY a.id LIMIT %s"
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
            # Closing ends the session, and the lock with it; the next pass reconnects.
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
        sealed = 0
        while True:
            mark = conn.execute("SELECT sealed_through FROM api_access_seal").fetchone()
            through = mark["sealed_through"] if mark else 0
            rows = conn.execute(_UNSEALED, (SETTLE, through, BATCH)).fetchall()
            if rows:
                self.writer.append_sync([access_event(r) for r in rows], "api-sealer")
                sealed += len(rows)
            settled = [r["id"] for r in rows if r["settled"]]
            if len(rows) < BATCH:
                # Every unsealed row was in this batch: all settled rows are sealed now.
                old = conn.execute(
                    "SELECT max(id) AS id FROM api_access_log WHERE id > %s"
                    " AND recorded_at < clock_timestamp() - %s", (through, SETTLE),
                ).fetchone()
                settled.append(old["id"] if old and old["id"] else 0)
            new_mark = max(settled, default=0)
            if new_mark > through:
                conn.execute("UPDATE api_access_seal SET sealed_through = %s", (new_mark,))
            if len(rows) < BATCH:
                return sealed

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
