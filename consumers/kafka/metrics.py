"""Counters of the Kafka ingestion path, in a shape a metrics exporter can read.

Plain numbers, updated by the consumer's single loop thread and read by anyone (a snapshot
is a copy): events ingested, duplicates absorbed, messages dead-lettered (rejected and
conflicts), infrastructure retries, a batch-latency histogram with cumulative
Prometheus-style buckets, and lag per partition. Lag is the high watermark the broker
reported with the last fetch minus the next offset to read; ``end_offsets()`` is never used
(Tansu answers it wrongly, and a fetch already carries the high watermark).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka.structs import TopicPartition

# Milliseconds; the last bucket is +Inf.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf,
)
# Recent batch latencies kept for exact percentiles (bounded, like everything else here).
RECENT_SAMPLES = 10_000


@dataclass
class LatencyHistogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS_MS
    counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))
    total: int = 0
    sum_ms: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES))

    def observe(self, ms: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, ms)] += 1
        self.total += 1
        self.sum_ms += ms
        self.recent.append(ms)

    def percentile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) of the recent samples, nearest-rank."""
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
        return ordered[rank]

    def cumulative(self) -> list[tuple[float, int]]:
        running, out = 0, []
        for bound, count in zip(self.buckets, self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass
class IngestMetrics:
    """What ``ledger consume`` has done since it started."""

    records: int = 0
    ingested: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: int = 0
    deadlettered: int = 0
    batches: int = 0
    retries: int = 0
    rebalances: int = 0
    batch_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    lag: dict[TopicPartition, int] = field(default_factory=dict)

    def record_lag(self, tp: TopicPartition, highwater: int | None, next_offset: int) -> None:
        if highwater is not None:
            self.lag[tp] = max(0, highwater - next_offset)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop per-partition state of partitions this consumer no longer owns."""
        for tp in partitions:
            self.lag.pop(tp, None)

    def total_lag(self) -> int:
        return sum(self.lag.values())

    def summary(self) -> str:
        return (
            f"{self.records} records in {self.batches} batches: {self.ingested} ingested, "
            f"{self.duplicates} duplicates, {self.conflicts} conflicts, "
            f"{self.rejected} rejected, {self.retries} infrastructure retries"
        )

    def snapshot(self) -> dict[str, Any]:
        latency = self.batch_latency
        return {
            "records": self.records,
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "deadlettered": self.deadlettered,
            "batches": self.batches,
            "retries": self.retries,
            "rebalances": self.rebalances,
            "batch_ms": {
                "count": latency.total,
                "sum": round(latency.sum_ms, 3),
                "p50": _round(latency.percentile(0.50)),
                "p99": _round(latency.percentile(0.99)),
                "buckets": [
                    ["+Inf" if math.isinf(b) else b, n] for b, n in latency.cumulative()
                ],
            },
            "lag": {f"{tp.topic}:{tp.partition}": n for tp, n in sorted(self.lag.items())},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
