"""Where the MLLP listener hands a received message on, durably, before acknowledging it.

* :class:`KafkaSink` (the default, ARCHITECTURE.md's one write path): the raw bytes go to
  the HL7 topic, keyed by the sending application (MSH-3) so each gateway's messages stay
  in order, with headers ``x-received-at`` (the edge's clock, RFC 3339) and
  ``x-hl7-control-id``; the call returns only once the broker acknowledged (``acks=all``).
  ``ledger consume`` then translates and appends (:mod:`consumers.hl7.kafka_hook`).
* :class:`LedgerSink`: translate here and append to the ledger in one transaction — for
  sites without Kafka, and the application acknowledgement becomes possible.

Both are synchronous (the listener runs them in one worker thread, in arrival order) and
return a :class:`~consumers.hl7.ack.Verdict`; infrastructure trouble is an ``error``
verdict (CE/AE: the sender retries), never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from consumers.hl7.ack import Verdict
from consumers.hl7.translator import Session
from ledger.store.types import AppendResult, Incoming, Outcome

log = logging.getLogger(__name__)

HEADER_RECEIVED_AT = "x-received-at"
HEADER_CONTROL_ID = "x-hl7-control-id"


class Sink(Protocol):
    def __call__(
        self, raw: bytes, received_at: datetime, sender: str, control_id: str
    ) -> Verdict: ...


class Appender(Protocol):
    def append(self, items: Sequence[Incoming]) -> list[AppendResult]: ...


class KafkaSink:
    """Publish raw HL7 to a topic and wait for the broker's acknowledgement."""

    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0):
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s

    def __call__(self, raw: bytes, received_at: datetime, sender: str, control_id: str) -> Verdict:
        headers = [(HEADER_RECEIVED_AT, received_at.isoformat().encode()),
                   (HEADER_CONTROL_ID, control_id.encode("utf-8", "replace"))]
        try:
            future = self.producer.send(self.topic, key=sender.encode("utf-8", "replace") or None,
                                        value=raw, headers=headers)
            future.get(timeout=self.timeout_s)
        except Exception as exc:  # KafkaError, timeouts: the sender must retry
            log.warning("HL7 message %s not handed to Kafka: %s", control_id, exc)
            return Verdict("error", f"not handed on to Kafka: {type(exc).__name__}")
        return Verdict("accepted")


class LedgerSink:
    """Translate and append in the listener's process (no Kafka in between)."""

    def __init__(self, store: Appender, session: Session, where: str = "mllp"):
        self.store = store
        self.session = session
        self.where = where
        self.counts = {"messages": 0, "events": 0, "dead_lettered": 0, "appended": 0,
                       "duplicates": 0, "conflicts": 0}

    def __call__(self, raw: bytes, received_at: datetime, sender: str, control_id: str) -> Verdict:
        translations = self.session.translate(raw, received_at=received_at)
        items = [i for t in translations for i in t.incoming(self.where)]
        self.counts["messages"] += len(translations)
        dead = [t for t in translations if t.dead_letter is not None]
        for t in dead:
            log.warning("HL7 message %s dead-lettered: %s: %s", t.control_id,
                        t.dead_letter.code if t.dead_letter else "", t.dead_letter.detail
                        if t.dead_letter else "")
        try:
            results = self.store.append(items) if items else []
        except Exception as exc:  # StoreUnavailable and friends: ask the sender to retry
            log.warning("HL7 message %s not appended: %s", control_id, exc)
            return Verdict("error", f"ledger unavailable: {type(exc).__name__}")
        self.counts["events"] += len(items)
        self.counts["dead_lettered"] += len(dead)
        for result in results:
            key = {Outcome.APPENDED: "appended", Outcome.DUPLICATE: "duplicates"}.get(
                result.outcome, "conflicts")
            self.counts[key] += 1
        if dead and not items:
            letter = dead[0].dead_letter
            assert letter is not None
            return Verdict("rejected", f"{letter.code}: {letter.detail}", code=letter.code,
                           applied=True)
        return Verdict("accepted", applied=True)
