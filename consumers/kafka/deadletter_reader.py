"""Reading the dead-letter topic back, and re-submitting dead letters to their source topic.

The reader is a group-less consumer (``assign()``, no commits): inspecting the topic never
moves anybody's position. It reads every partition from the beginning to the high
watermark the broker reported with a fetch (``end_offsets()`` is not trusted; Tansu gets it
wrong), and folds repeated reports of one origin (the topic is at-least-once, see
``deadletter``) into one entry.

Re-submitting produces the original key, value and headers (minus the ``x-error-*`` and
``x-origin`` headers, plus ``x-resubmitted-from``) to the topic the message came from. The
value, hence its ``event_id``, is untouched, so the ledger's idempotency makes a re-submit
exactly-once: re-submitting twice, or a message that meanwhile arrived again, is absorbed
as a duplicate. Conflicts are skipped unless asked for: the same bytes would conflict again.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from consumers.kafka.config import KafkaConnection, default_client_id
from consumers.kafka.deadletter import (
    HEADER_CODE,
    HEADER_DETAIL,
    HEADER_KIND,
    HEADER_ORIGIN,
    KIND_CONFLICT,
    RESERVED_HEADERS,
)
from consumers.kafka.errors import BrokerUnavailable, DeadLetterNotFound, broker_error

HEADER_RESUBMITTED_FROM = "x-resubmitted-from"


@dataclass(frozen=True)
class DeadLetterRecord:
    """One message of the dead-letter topic, with its reasons decoded."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int
    reports: int = 1
    repeats: tuple[str, ...] = ()  # refs of later reports of the same origin, folded here

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def code(self) -> str:
        return self.header(HEADER_CODE) or "unknown"

    @property
    def detail(self) -> str:
        return self.header(HEADER_DETAIL) or ""

    @property
    def kind(self) -> str:
        return self.header(HEADER_KIND) or "rejected"

    @property
    def origin(self) -> str:
        return self.header(HEADER_ORIGIN) or ""

    @property
    def origin_topic(self) -> str | None:
        parts = self.origin.rsplit(":", 2)
        return parts[0] if len(parts) == 3 else None

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if k not in RESERVED_HEADERS]

    def event_field(self, name: str) -> str | None:
        """A top-level field of the value when it is a JSON object (for display)."""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            value = json.loads(self.value or b"")
            if isinstance(value, dict) and value.get(name) is not None:
                return str(value[name])
        return None

    def matches(self, ref: str) -> bool:
        """A dead-letter ``partition:offset`` or an origin ``topic:partition:offset``."""
        return ref in (self.ref, self.origin) or ref in self.repeats


def fold_by_origin(records: Iterable[DeadLetterRecord]) -> list[DeadLetterRecord]:
    """One entry per origin (the first report), counting how often it was reported."""
    first: dict[str, DeadLetterRecord] = {}
    repeats: dict[str, list[str]] = {}
    for record in records:
        identity = record.origin or f"dlq:{record.ref}"
        if identity in first:
            repeats[identity].append(record.ref)
        else:
            first[identity] = record
            repeats[identity] = []
    return [
        replace(record, reports=1 + len(repeats[identity]), repeats=tuple(repeats[identity]))
        for identity, record in first.items()
    ]


def read_deadletters(
    connection: KafkaConnection,
    topic: str,
    *,
    idle_timeout_s: float = 5.0,
    consumer_factory: Callable[..., KafkaConsumer] = KafkaConsumer,
) -> list[DeadLetterRecord]:
    """Every message on the dead-letter topic, in partition and offset order."""
    try:
        consumer = consumer_factory(
            **connection.consumer_kwargs(
                client_id=default_client_id("deadletter-reader"), group_id=None,
                enable_auto_commit=False, auto_offset_reset="earliest",
                allow_auto_create_topics=False, fetch_max_wait_ms=100,
            )
        )
    except KafkaError as exc:
        raise broker_error(f"connecting to Kafka at {connection.bootstrap_servers}", exc) from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise DeadLetterNotFound(f"dead-letter topic {topic!r} does not exist")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[DeadLetterRecord] = []
        last_progress = time.monotonic()
        while not _caught_up(consumer, assigned):
            polled = consumer.poll(timeout_ms=200)
            for batch in polled.values():
                records.extend(_as_record(r) for r in batch)
            if polled:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout_s:
                break
    except KafkaError as exc:
        raise broker_error(f"reading {topic}", exc) from exc
    finally:
        with contextlib.suppress(Exception):
            consumer.close(autocommit=False, timeout_ms=2000)
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _caught_up(consumer: KafkaConsumer, partitions: Sequence[TopicPartition]) -> bool:
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True


def _as_record(record: Any) -> DeadLetterRecord:
    return DeadLetterRecord(
        record.partition, record.offset, record.key, record.value,
        tuple(record.headers or ()), record.timestamp,
    )


@dataclass(frozen=True)
class Resubmission:
    letter: DeadLetterRecord
    topic: str
    partition: int | None = None
    offset: int | None = None


def plan_resubmissions(
    letters: Iterable[DeadLetterRecord],
    deadletter_topic: str,
    *,
    to_topic: str | None = None,
    include_conflicts: bool = False,
) -> tuple[list[Resubmission], list[tuple[DeadLetterRecord, str]]]:
    """Which letters go where, and which are skipped (with the reason)."""
    planned: list[Resubmission] = []
    skipped: list[tuple[DeadLetterRecord, str]] = []
    for letter in letters:
        target = to_topic or letter.origin_topic
        if letter.kind == KIND_CONFLICT and not include_conflicts:
            skipped.append((letter, "conflict: the same content would conflict again"))
        elif target is None:
            skipped.append((letter, "no x-origin header: pass --to-topic"))
        elif target == deadletter_topic:
            skipped.append((letter, "target is the dead-letter topic itself"))
        else:
            planned.append(Resubmission(letter, target))
    return planned, skipped


def resubmit(
    producer: KafkaProducer,
    plan: Sequence[Resubmission],
    deadletter_topic: str,
    timeout_s: float = 30.0,
) -> list[Resubmission]:
    """Produce each planned letter and wait for every acknowledgement."""
    futures = []
    for item in plan:
        letter = item.letter
        headers = [(k, v) for k, v in letter.original_headers if k != HEADER_RESUBMITTED_FROM]
        headers.append(
            (HEADER_RESUBMITTED_FROM, f"{deadletter_topic}:{letter.ref}".encode())
        )
        try:
            futures.append(
                producer.send(item.topic, key=letter.key, value=letter.value, headers=headers)
            )
        except KafkaError as exc:
            raise broker_error(f"re-submitting {letter.ref}", exc) from exc
    done: list[Resubmission] = []
    deadline = time.monotonic() + timeout_s
    for item, future in zip(plan, futures, strict=True):
        try:
            meta = future.get(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"re-submission of {item.letter.ref} not confirmed ({len(done)} of "
                f"{len(plan)} confirmed): {type(exc).__name__}: {exc}"
            ) from exc
        done.append(Resubmission(item.letter, item.topic, meta.partition, meta.offset))
    return done
