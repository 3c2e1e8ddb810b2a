"""Value types of the append path: what goes in, what comes out.

Kept apart from the recorder so edges (Kafka, NDJSON import, HL7) can build batches
without importing psycopg.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the ledger got an event from: recorded with it and covered by its hash.

    ``kind`` is ``kafka`` (``ref`` = ``topic:partition:offset``), ``file`` (``path:line``),
    ``hl7`` (``MSH-10`` control id) or ``internal`` (appended by the product itself).
    """

    kind: str
    ref: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class Incoming:
    """One validated contract event with its origin, ready to append."""

    event: Any  # a ledger.contract event model (typed as Any to keep this module import-light)
    origin: Origin


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """The next offset to read from a source partition, stored with the events it covers."""

    consumer: str
    topic: str
    partition: int
    next_offset: int


class Outcome(StrEnum):
    APPENDED = "appended"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to one event of a batch.

    For ``duplicate`` and ``conflict``, ``notification_id`` is the position of the event
    already stored under that ``event_id``.
    """

    event_id: UUID
    outcome: Outcome
    notification_id: int | None
    stream: str
    stream_version: int | None = None
