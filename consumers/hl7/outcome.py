"""What translating one message produced: events, or a reason there are none.

Every message gets exactly one outcome:

* ``events`` — one or more validated contract events (plus what was dropped and why);
* ``no_event`` — understood, and deliberately nothing to record (an ACK^O15 accept, an
  IPEC STOP that is the first half of a rate change), with the reason;
* ``dead_lettered`` — not recoverable (``code`` + ``detail``): unparseable, unsupported
  profile, a timestamp without offset, nothing the contract can carry...

Events carry MSH-10 as ``source.message_id``; their :class:`~ledger.store.Origin` is
``hl7`` with ``<MSH-10>|sha256:<digest of the message>`` (plus where it was read from), so
each stored event names the exact message it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ledger.store.types import Incoming, Origin

OutcomeKind = Literal["events", "no_event", "dead_lettered"]


@dataclass(frozen=True)
class Dropped:
    """Something in the message that did not become (part of) an event, and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class DeadLetter:
    code: str
    detail: str


@dataclass
class Translation:
    """The outcome of one message (see the module docstring)."""

    number: int
    line: int = 0  # where the message starts in its input (1-based line), 0 if unknown
    control_id: str = ""
    message_type: str = ""
    transaction: str | None = None
    sha256: str = ""
    events: list[Any] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dead_letter: DeadLetter | None = None
    no_event_reason: str | None = None

    @property
    def outcome(self) -> OutcomeKind:
        if self.dead_letter is not None:
            return "dead_lettered"
        return "events" if self.events else "no_event"

    def origin(self, where: str | None = None) -> Origin:
        ref = f"{self.control_id}|sha256:{self.sha256}"
        return Origin("hl7", f"{ref}|{where}" if where else ref)

    def incoming(self, where: str | None = None) -> list[Incoming]:
        origin = self.origin(where)
        return [Incoming(event, origin) for event in self.events]

    def summary(self) -> dict[str, Any]:
        """A JSON-able report of the outcome (CLI, logs, tests)."""
        report: dict[str, Any] = {
            "message": self.number,
            "control_id": self.control_id,
            "type": self.message_type,
            "transaction": self.transaction,
            "outcome": self.outcome,
            "events": [event.type for event in self.events],
        }
        if self.dead_letter is not None:
            report["dead_letter"] = {"code": self.dead_letter.code,
                                     "detail": self.dead_letter.detail}
        if self.no_event_reason:
            report["reason"] = self.no_event_reason
        if self.dropped:
            report["dropped"] = [str(d) for d in self.dropped]
        if self.notes:
            report["repairs"] = list(self.notes)
        return report
