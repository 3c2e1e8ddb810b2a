"""Step 3 of a batch whose transaction committed: the Kafka commit, the counters, the log line.

By the time these run, PostgreSQL holds the batch's events and positions; nothing here can
lose or double an event. The Kafka commit is a convenience for tooling (consumers seek to
the positions in PostgreSQL), and the counters and the one INFO line per batch are what
operators watch (docs/kafka.md, "Operating it").
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.kafka.batch import Batch
from consumers.kafka.metrics import IngestMetrics
from ledger.store.types import AppendResult, Outcome

log = logging.getLogger("consumers.kafka.consumer")  # one logger name for the whole loop


def commit_to_kafka(consumer: KafkaConsumer, batch: Batch, owned: set[TopicPartition]) -> None:
    # A partition revoked while its batch was in flight belongs to another member now:
    # committing for it could move the group's Kafka offset backwards.
    offsets = {
        tp: OffsetAndMetadata(n, "", -1) for tp, n in batch.next_offsets.items() if tp in owned
    }
    if not offsets:
        return
    try:
        consumer.commit_async(offsets, callback=_log_commit_failure)
    except KafkaError as exc:
        # PostgreSQL already holds these positions; the next commit carries them too.
        log.warning("Kafka offset commit not sent: %s: %s", type(exc).__name__, exc)


def account_batch(
    m: IngestMetrics,
    consumer: KafkaConsumer,
    batch: Batch,
    results: list[AppendResult],
    refused: int,
    conflicts: int,
    elapsed_ms: float,
    owned: set[TopicPartition],
) -> None:
    """Count a committed batch, note each owned partition's lag, and log the batch line."""
    appended = sum(1 for r in results if r.outcome is Outcome.APPENDED)
    duplicates = sum(1 for r in results if r.outcome is Outcome.DUPLICATE)
    m.batches += 1
    m.records += batch.records
    m.ingested += appended
    m.duplicates += duplicates
    m.rejected += refused
    m.conflicts += conflicts
    m.deadlettered += refused + conflicts
    m.batch_latency.observe(elapsed_ms)
    for tp, next_offset in batch.next_offsets.items():
        if tp not in owned:
            continue  # revoked meanwhile: its lag is the new owner's to report
        with contextlib.suppress(Exception):
            m.record_lag(tp, consumer.highwater(tp), next_offset)
    log.info(
        "batch records=%d ingested=%d duplicates=%d conflicts=%d rejected=%d "
        "partitions=%d lag=%d ms=%.1f",
        batch.records, appended, duplicates, conflicts, refused,
        len(batch.next_offsets), m.total_lag(), elapsed_ms,
        extra={
            "event": "batch", "records": batch.records, "ingested": appended,
            "duplicates": duplicates, "conflicts": conflicts, "rejected": refused,
            "partitions": len(batch.next_offsets), "lag": m.total_lag(),
            "ms": round(elapsed_ms, 2),
        },
    )


def _log_commit_failure(offsets: dict[TopicPartition, OffsetAndMetadata], response: Any) -> None:
    if isinstance(response, Exception):
        log.warning(
            "Kafka offset commit failed (positions are safe in PostgreSQL): %s: %s",
            type(response).__name__, response,
        )
