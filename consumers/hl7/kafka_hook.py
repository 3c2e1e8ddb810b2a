"""``ledger consume`` on the raw HL7 topic: one Kafka record → contract events or refusals.

The Kafka consumer (``consumers/kafka``) reads JSON events; for topics registered in
``translators`` it calls a *record translator* instead. This one translates the record's
raw HL7 with a :class:`~consumers.hl7.translator.Session` (one per consumer process, so an
RRG^O16 reply finds the request read before it), stamps ``received_at`` from the
``x-received-at`` header the MLLP listener set, and returns:

* each translated event as an ``Incoming`` with origin
  ``hl7:<MSH-10>|sha256:<digest>|kafka:<topic>:<partition>:<offset>``;
* each dead-lettered message as a ``Refusal`` (code ``hl7_<code>``, the reason as
  detail), so it lands on the dead-letter topic with the original bytes;
* nothing for an understood message without events (an ACK): the offset still moves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consumers.hl7.config import Hl7Config
from consumers.hl7.sinks import HEADER_RECEIVED_AT
from consumers.hl7.translator import Session
from consumers.kafka.batch import RecordTranslator, Refusal, origin_ref
from ledger.store.types import Incoming

log = logging.getLogger(__name__)


def _received_at(record: Any) -> datetime | None:
    for key, value in record.headers or ():
        if key == HEADER_RECEIVED_AT:
            try:
                stamp = datetime.fromisoformat(value.decode())
            except (ValueError, UnicodeDecodeError):
                return None
            return stamp if stamp.tzinfo is not None else None
    return None


class Hl7RecordTranslator:
    """Callable ``record -> (accepted, refused)`` for ``build_batch``."""

    def __init__(self, session: Session):
        self.session = session

    def __call__(self, record: Any) -> tuple[list[Incoming], list[Refusal]]:
        if record.value is None:
            return [], [Refusal(record, "missing_value", "<root>: no value (tombstone)")]
        accepted: list[Incoming] = []
        refused: list[Refusal] = []
        where = f"kafka:{origin_ref(record)}"
        for translation in self.session.translate(record.value,
                                                  received_at=_received_at(record)):
            letter = translation.dead_letter
            if letter is not None:
                refused.append(Refusal(record, f"hl7_{letter.code}",
                                       f"message {translation.number} "
                                       f"({translation.control_id or 'no MSH-10'}): "
                                       f"{letter.detail}"[:2000]))
                continue
            for dropped in translation.dropped:
                log.info("HL7 %s at %s: dropped %s", translation.control_id, where, dropped)
            accepted.extend(translation.incoming(where))
        return accepted, refused


def translators_for(settings: Any, topics: tuple[str, ...] | None = None
                    ) -> Mapping[str, RecordTranslator]:
    """``{hl7 topic: translator}`` for ``ledger consume`` (empty if it is not consumed)."""
    topic = getattr(settings, "hl7_kafka_topic", None)
    if not topic or (topics is not None and topic not in topics):
        return {}
    return {topic: Hl7RecordTranslator(Session(Hl7Config.from_settings(settings)))}
