"""Appending a batch from a file-like source and counting what happened to each event."""

from __future__ import annotations

from ledger.store import Incoming, Outcome
from ledger.store.event_store import EventStore
from ledger_cli.progress import say


def append_counted(store: EventStore, batch: list[Incoming], counts: dict[str, int]) -> None:
    """Append ``batch``; add to ``counts`` (appended / duplicates / conflicts) and report
    each conflict on stderr by its origin (``path:line`` or the message reference)."""
    for item, result in zip(batch, store.append(batch), strict=True):
        if result.outcome is Outcome.APPENDED:
            counts["appended"] += 1
        elif result.outcome is Outcome.DUPLICATE:
            counts["duplicates"] += 1
        else:
            counts["conflicts"] += 1
            say(f"{item.origin.ref}: conflict: event_id {result.event_id} is already stored "
                f"(position {result.notification_id}) with different content; kept the first")
    batch.clear()
