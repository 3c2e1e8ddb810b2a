"""Read audit: one durable access record per request that touches patient-level data.

HIPAA's audit controls (DOMAIN.md §8) ask who read what, as whom, about which patients,
when, and with what outcome. Each audited request carries an :class:`AccessContext` that
collects the patients its response discloses; :meth:`AuditLog.record` writes it to the
append-only ``api_access_log`` and returns only once that row is *committed* (autocommit,
so durable) — and the caller sends its response only after that. The row is the request's
``access.recorded`` event; the sealer later seals new rows in batches, each seal anchored
in the ledger (``ledger.store.access_seals``), so requests never queue on a hash chain.

Group commit: a commit costs a WAL flush and a round trip, which at 16 concurrent clients
was most of the audit's cost. Records that arrive while a flush is in progress wait for
the next one, which writes them all in one multi-row INSERT (one statement, one commit);
each request still awaits the commit of its own row, so the durability promise above is
unchanged — a lone request is written at once, as before. Should a batch fail, its rows
are retried one by one, so a row PostgreSQL refuses (a NUL byte in a path) fails only its
own request.

Tokens the response handed out are registered in the same statement (``api_pseudonyms``),
which is what lets an auditor send a token back later.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from ledger.ids import uuid7
from projections.api.keys import Principal
from projections.api.queries import Pool

log = logging.getLogger(__name__)

Outcome = Literal["allowed", "denied", "error"]

_COLUMNS = (
    "event_id, occurred_at, request_id, key_id, role, method, endpoint, path, query, purpose,"
    " facility_ids, patient_ids, outcome, status_code"
)
# One fixed statement for any batch size (so it stays a prepared statement): the records
# travel as one JSON array, expanded in order; the tokens as three parallel arrays. A
# data-modifying CTE always runs, so one round trip writes the records and the tokens.
_INSERT = (
    f"WITH access AS (INSERT INTO api_access_log ({_COLUMNS})"
    f" SELECT {_COLUMNS} FROM ROWS FROM (json_populate_recordset(NULL::api_access_log, %s::json))"
    " WITH ORDINALITY AS r ORDER BY r.ordinality RETURNING id)"
    " INSERT INTO api_pseudonyms (token, facility_id, patient_id, key_fingerprint)"
    " SELECT t, f, p, %s FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(t, f, p)"
    " ON CONFLICT (token) DO NOTHING"
)
#: Records written by one statement at most (a burst larger than this takes several).
MAX_BATCH = 256


def outcome_of(status_code: int) -> Outcome:
    if status_code in (401, 403):
        return "denied"
    if status_code >= 400 and status_code != 404:
        return "error"
    return "allowed"


@dataclass
class AccessContext:
    """What one request is, and which patients it has disclosed so far."""

    principal: Principal
    method: str
    endpoint: str
    path: str
    query: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    purpose: str | None = None
    patients: dict[tuple[str, str], None] = field(default_factory=dict)
    new_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)

    def touch(self, facility_id: str, patient_id: str) -> None:
        self.patients[(facility_id, patient_id)] = None

    @property
    def patient_ids(self) -> list[str]:
        return list(dict.fromkeys(p for _, p in self.patients))

    @property
    def facility_ids(self) -> list[str]:
        return list(dict.fromkeys(f for f, _ in self.patients))


@dataclass
class _Pending:
    """One record waiting for its commit."""

    row: dict[str, Any]
    tokens: list[tuple[str, str, str]]
    done: asyncio.Future[None]


class AuditLog:
    """Writes access records; an exception here must stop the response (see SecuredRoute)."""

    def __init__(self, pool: Pool, key_fingerprint: str, max_batch: int = MAX_BATCH):
        self.pool = pool
        self.key_fingerprint = key_fingerprint
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, access: AccessContext, status_code: int) -> uuid.UUID:
        """Write the access record; return once it is committed (raises if it is not)."""
        event_id = uuid7()  # time-ordered: see ledger.ids
        principal = access.principal
        row = {
            "event_id": str(event_id), "occurred_at": access.occurred_at.isoformat(),
            "request_id": access.request_id, "key_id": principal.key_id,
            "role": principal.role.value, "method": access.method, "endpoint": access.endpoint,
            "path": access.path, "query": access.query or None, "purpose": access.purpose,
            "facility_ids": access.facility_ids, "patient_ids": access.patient_ids,
            "outcome": outcome_of(status_code), "status_code": status_code,
        }
        tokens = [(t, f, p) for t, (f, p) in access.new_tokens.items()]
        pending = _Pending(row, tokens, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._flusher is None:
            # The flush runs as its own task: a request cancelled while it waits (a client
            # gone) must not abandon the other records of its batch.
            self._flusher = asyncio.create_task(self._flush())
        await pending.done
        return event_id

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._write_batch(batch)
        finally:
            self._flusher = None

    async def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            await self._write(batch)
        except asyncio.CancelledError as exc:  # shutting down: nobody may wait forever
            for pending in (*batch, *self._queue):
                _settle(pending, exc)
            self._queue.clear()
            raise
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            log.warning("access records: a batch of %d failed (%s); writing one by one",
                        len(batch), exc)
            for pending in batch:
                try:
                    await self._write([pending])
                except Exception as single:
                    _settle(pending, single)
                else:
                    _settle(pending, None)
        else:
            for pending in batch:
                _settle(pending, None)

    async def _write(self, batch: list[_Pending]) -> None:
        tokens = [token for pending in batch for token in pending.tokens]
        params = (
            orjson.dumps([pending.row for pending in batch]).decode(), self.key_fingerprint,
            [t for t, _, _ in tokens], [f for _, f, _ in tokens], [p for _, _, p in tokens],
        )
        async with self.pool.connection() as conn:
            await conn.execute(_INSERT, params)


def _settle(pending: _Pending, error: BaseException | None) -> None:
    if pending.done.done():  # the request was cancelled while it waited
        return
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)
