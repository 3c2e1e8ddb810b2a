"""The API's one way to write to the ledger: ``EventStore.append`` from a worker thread.

The API appends two internal types only — ``discrepancy.reviewed`` (a person's review) and
``access.sealed`` (the sealer's anchor of one seal of the access log) — through the same
append path as every producer (idempotency by ``event_id``, per-stream versions, hash
chain). ``EventStore`` is synchronous and its recorder caches stream heads per instance,
so one instance is shared behind a lock and async callers reach it through a thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from ledger.contract import parse_mapping
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.types import AppendResult, Incoming, Origin


def internal_event(document: dict[str, Any]) -> Any:
    """Validate an internal event exactly as the ledger would (allow_internal); by the
    contract's JSON fast path, several times cheaper than the mapping's."""
    return parse_mapping(document, allow_internal=True)


class LedgerWriter:
    def __init__(self, connection: ConnectionParams):
        self.connection = connection
        self._store: EventStore | None = None
        self._lock = threading.Lock()

    def append_sync(self, events: Sequence[Any], origin_ref: str) -> list[AppendResult]:
        items = [Incoming(event, Origin("internal", origin_ref)) for event in events]
        with self._lock:
            if self._store is None:
                # Opened lazily: an API started while the database is down can still come up
                # and report "not ready" instead of crashing.
                self._store = EventStore(self.connection, pool_size=1)
            return self._store.append(items)

    async def append(self, events: Sequence[Any], origin_ref: str) -> list[AppendResult]:
        return await asyncio.to_thread(self.append_sync, events, origin_ref)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
