"""Turning one poll result into a batch: decode, validate, classify, and note the positions.

Every record ends up in exactly one of two lists: ``accepted`` (a validated contract event
with its Kafka origin, ready for :meth:`EventStore.append`) or ``refused`` (not JSON, not
the v1 contract, an internal type, or no value at all — each with a stable code and a
detail naming the field path and the reason, for the dead-letter headers). Whether an
accepted event is new, a duplicate or a conflict is only known after the append.

``next_offsets`` is, per partition, the offset after the last record of the batch: the
position stored in PostgreSQL once the whole batch is settled. The records of one partition
arrive in offset order and are kept in that order, so each stream stays in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka.structs import TopicPartition

from ledger.contract.fast import parse_for_store
from ledger.errors import ContractError, FieldError
from ledger.store.types import Incoming, Origin, SourcePosition

MAX_DETAIL_CHARS = 2000


def origin_ref(record: Any) -> str:
    """``topic:partition:offset`` of a consumed record (the ``x-origin`` header value)."""
    return f"{record.topic}:{record.partition}:{record.offset}"


def describe(errors: Sequence[FieldError]) -> str:
    """Field paths and reasons, one ``path: message [code]`` per error, bounded in length."""
    text = "; ".join(str(error) for error in errors) or "invalid event"
    if len(text) > MAX_DETAIL_CHARS:
        text = text[: MAX_DETAIL_CHARS - 15] + " ... (truncated)"
    return text


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record the contract refused, and why."""

    record: Any
    code: str
    detail: str


@dataclass
class Batch:
    records: int = 0
    accepted: list[Incoming] = field(default_factory=list)
    accepted_records: list[Any] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def positions(self, consumer: str) -> list[SourcePosition]:
        return [
            SourcePosition(consumer, tp.topic, tp.partition, offset)
            for tp, offset in sorted(self.next_offsets.items())
        ]

    @property
    def partitions(self) -> list[TopicPartition]:
        return sorted(self.next_offsets)


def classify(record: Any) -> Incoming | Refusal:
    if record.value is None:
        return Refusal(record, "missing_value", "<root>: the message has no value (tombstone)")
    try:
        event = parse_for_store(record.value)
    except ContractError as exc:
        return Refusal(record, exc.code, describe(exc.errors))
    return Incoming(event, Origin("kafka", origin_ref(record)))


#: Turns one record of a non-JSON topic (raw HL7) into events and/or refusals. Registered
#: per topic (``build_batch(polled, translators)``); each event keeps its record, so a
#: conflict is dead-lettered with the record's original bytes like any other.
RecordTranslator = Callable[[Any], tuple[list[Incoming], list[Refusal]]]


def build_batch(
    polled: Mapping[TopicPartition, Sequence[Any]],
    translators: Mapping[str, RecordTranslator] | None = None,
) -> Batch:
    batch = Batch()
    for tp, records in polled.items():
        if not records:
            continue
        batch.records += len(records)
        batch.first_offsets[tp] = records[0].offset
        batch.next_offsets[tp] = records[-1].offset + 1
        translate = translators.get(tp.topic) if translators else None
        for record in records:
            if translate is not None:
                accepted, refused = translate(record)
                batch.accepted.extend(accepted)
                batch.accepted_records.extend([record] * len(accepted))
                batch.refused.extend(refused)
                continue
            outcome = classify(record)
            if isinstance(outcome, Refusal):
                batch.refused.append(outcome)
            else:
                batch.accepted.append(outcome)
                batch.accepted_records.append(record)
    return batch
