"""The write API every edge uses: one call, one transaction, a per-event outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from ledger.store.application import LedgerApplication, application_env
from ledger.store.database import ConnectionParams
from ledger.store.prepare import prepare
from ledger.store.recorder import LedgerRecorder
from ledger.store.types import AppendResult, Incoming, SourcePosition


class EventStore:
    """Append validated events idempotently; read back where each source got to.

    ``append`` takes a batch of validated events and the source positions it covers and
    writes all of it in one transaction: the events that are new (with versions and hash
    chain links), and each partition's next offset. Duplicates (same ``event_id``, same
    content) and conflicts (same ``event_id``, other content) are reported, never stored.
    """

    def __init__(self, params: ConnectionParams, *, pool_size: int = 2):
        self.params = params
        self.app = LedgerApplication(env=application_env(params, pool_size))
        self.recorder = cast(LedgerRecorder, self.app.recorder)

    def append(
        self,
        items: Sequence[Incoming],
        positions: Sequence[SourcePosition] = (),
        *,
        before_commit: Callable[[list[AppendResult]], None] | None = None,
    ) -> list[AppendResult]:
        """``before_commit(outcomes)`` runs inside the transaction, after the events are
        written and before the positions are: if it raises, nothing of the batch commits."""
        if not items and not positions:
            return []
        return self.recorder.append(prepare(items), positions, before_commit)

    def source_positions(self, consumer: str, topic: str) -> dict[int, int]:
        """``{partition: next_offset}`` stored for a consumer and topic."""
        return self.recorder.source_positions(consumer, topic)

    def close(self) -> None:
        self.app.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
