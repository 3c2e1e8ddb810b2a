"""Dead-letter records: their format, and producing them with confirmation.

A dead letter keeps the original key, value (bytes, untouched) and headers, and adds:

* ``x-error-code`` — a stable code (``invalid_json``, a contract code such as ``missing``,
  ``missing_value`` for a tombstone, or ``conflict``);
* ``x-error-detail`` — the field path(s) and the reason, human readable;
* ``x-origin`` — ``topic:partition:offset`` of the original message (its identity: the
  same origin dead-lettered twice is the same report, see below);
* ``x-error-kind`` — ``rejected`` (malformed) or ``conflict`` (same ``event_id``, other
  content than the event already recorded), since conflicts are counted apart.

Headers of these names already on the message (a re-submitted dead letter refused again)
are replaced, not repeated. :meth:`DeadLetterPublisher.publish` returns only once the broker
acknowledged every record (``acks=all``); the consumer calls it *before* it stores the
positions that move past those messages. The dead-letter topic is therefore at-least-once:
a crash after the acknowledgement and before the position commit reports the same origin
again on replay, and the tooling (``ledger deadletter``) folds reports by ``x-origin``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.kafka.batch import Refusal, origin_ref
from consumers.kafka.errors import DeadLetterNotConfirmed
from ledger.store.types import AppendResult

log = logging.getLogger(__name__)

HEADER_CODE = "x-error-code"
HEADER_DETAIL = "x-error-detail"
HEADER_ORIGIN = "x-origin"
HEADER_KIND = "x-error-kind"
RESERVED_HEADERS = frozenset({HEADER_CODE, HEADER_DETAIL, HEADER_ORIGIN, HEADER_KIND})

KIND_REJECTED = "rejected"
KIND_CONFLICT = "conflict"
CONFLICT_CODE = "conflict"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    origin: str
    code: str
    kind: str

    @classmethod
    def for_record(cls, record: Any, *, code: str, detail: str, kind: str) -> DeadLetter:
        origin = origin_ref(record)
        kept = [(k, v) for k, v in (record.headers or ()) if k not in RESERVED_HEADERS]
        added = [
            (HEADER_CODE, code.encode()),
            (HEADER_DETAIL, detail.encode()),
            (HEADER_ORIGIN, origin.encode()),
            (HEADER_KIND, kind.encode()),
        ]
        return cls(record.key, record.value, tuple(kept + added), origin, code, kind)


def refusal_letter(refusal: Refusal) -> DeadLetter:
    return DeadLetter.for_record(
        refusal.record, code=refusal.code, detail=refusal.detail, kind=KIND_REJECTED
    )


def conflict_letter(record: Any, result: AppendResult) -> DeadLetter:
    detail = (
        f"event_id: {result.event_id} is already recorded with different content "
        f"(stream {result.stream}, position {result.notification_id}); the first is kept"
    )
    return DeadLetter.for_record(record, code=CONFLICT_CODE, detail=detail, kind=KIND_CONFLICT)


class DeadLetterPublisher:
    """Produces dead letters to one topic and waits for the broker's acknowledgement."""

    def __init__(
        self, producer_factory: Callable[[], KafkaProducer], topic: str, timeout_s: float = 30.0
    ):
        self._factory = producer_factory
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer: KafkaProducer | None = None
        # Refusals are published from the consumer loop, conflicts from the append worker
        # (inside its transaction): one at a time, so neither sees the other's producer
        # discarded or created twice.
        self._lock = threading.Lock()

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._factory()
        return self._producer

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Produce every letter; raise :class:`DeadLetterNotConfirmed` with those not acked."""
        if not letters:
            return
        with self._lock:
            self._publish(letters)

    def _publish(self, letters: Sequence[DeadLetter]) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            producer = self._get_producer()
        except KafkaError as exc:
            raise DeadLetterNotConfirmed(
                f"dead-letter producer: {type(exc).__name__}: {exc}", letters
            ) from exc
        sent: list[tuple[DeadLetter, Any]] = []
        unconfirmed: list[DeadLetter] = []
        first_error: BaseException | None = None
        for index, letter in enumerate(letters):
            try:
                future = producer.send(
                    self.topic, key=letter.key, value=letter.value, headers=list(letter.headers)
                )
            except KafkaError as exc:
                first_error = exc
                unconfirmed.extend(letters[index:])
                break
            sent.append((letter, future))
        for letter, future in sent:
            try:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
            except KafkaError as exc:
                first_error = first_error or exc
                unconfirmed.append(letter)
        if unconfirmed:
            # A producer that failed may hold a fenced producer id (broker restart) or a
            # dead connection; the next attempt starts from a fresh one.
            self._discard_producer()
            raise DeadLetterNotConfirmed(
                f"{len(unconfirmed)} of {len(letters)} dead letters to {self.topic} not "
                f"confirmed: {type(first_error).__name__}: {first_error}",
                unconfirmed,
            )

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=1)

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=5)
