"""The tamper-evident PostgreSQL event store (eventsourcing's tables, the ledger's guarantees)."""

from ledger.store.types import AppendResult, Incoming, Origin, Outcome, SourcePosition

__all__ = ["AppendResult", "Incoming", "Origin", "Outcome", "SourcePosition"]
