"""Prometheus collectors that read state other packages keep; they never count on their own.

* :class:`IngestCollector` — the consumer's ``IngestMetrics`` object (``consumers/kafka``),
  read through a protocol so this package imports no Kafka.
* :class:`DatabaseCollector` — ``projection_status`` rows (lag in events and seconds per
  projection), the ledger's head position and, once the discrepancy engine has published
  its ``discrepancies`` view, findings by severity and status. Reads at most once per
  ``interval`` seconds; scrapes in between get the cached families, so a busy Prometheus
  (or several) never turns into database load.
* :class:`VerifyCollector` — the last ``ledger verify`` result, from the file
  :func:`observability.verify.record_verify` writes.

Reading from the scrape thread while the consumer's loop thread writes is safe without a
lock: the consumer only rebinds ints and mutates one dict and one list, and copying a dict
or a list (``dict(d)``, ``list(l)``) happens in C under the GIL, so a copy is consistent.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PROJECTION_STATUSES = ("running", "caught_up", "stopped", "failed")


# -- the consumer ------------------------------------------------------------------------


class TopicPartitionLike(Protocol):
    topic: str
    partition: int


class LatencyHistogramLike(Protocol):
    buckets: tuple[float, ...]
    counts: list[int]
    total: int
    sum_ms: float


class IngestMetricsLike(Protocol):
    """The attributes of ``consumers.kafka.metrics.IngestMetrics`` that are exported."""

    records: int
    ingested: int
    duplicates: int
    rejected: int
    conflicts: int
    batches: int
    retries: int
    rebalances: int
    batch_latency: LatencyHistogramLike
    lag: Mapping[Any, int]


class IngestCollector(Collector):
    """``ledger consume``'s counters, batch latency histogram and lag per partition."""

    def __init__(self, metrics: IngestMetricsLike):
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return list(self._families(empty=True))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(empty=False))

    def _families(self, *, empty: bool) -> Iterator[Metric]:
        m = self.metrics

        def counter(name: str, doc: str, value: int) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, value=None if empty else value)

        yield counter("ledger_consumer_records", "Kafka records settled (any outcome)", m.records)
        yield counter("ledger_events_ingested", "Events appended to the ledger", m.ingested)
        yield counter(
            "ledger_events_duplicates",
            "Events absorbed as duplicates of an event_id already stored", m.duplicates,
        )
        deadlettered = CounterMetricFamily(
            "ledger_events_deadlettered",
            "Messages sent to the dead-letter topic, by reason (rejected: not JSON or not "
            "the contract; conflict: an event_id reused for other content)",
            labels=["reason"],
        )
        if not empty:
            deadlettered.add_metric(["rejected"], m.rejected)
            deadlettered.add_metric(["conflict"], m.conflicts)
        yield deadlettered
        yield counter("ledger_consumer_batches", "Poll batches settled", m.batches)
        yield counter(
            "ledger_consumer_retries", "Infrastructure failures retried (Kafka, PostgreSQL)",
            m.retries,
        )
        yield counter(
            "ledger_consumer_rebalances", "Partition assignments received", m.rebalances
        )
        yield self._histogram(empty)
        lag = GaugeMetricFamily(
            "ledger_consumer_lag_messages",
            "High watermark minus next offset, per owned partition (from the last fetch)",
            labels=["topic", "partition"],
        )
        if not empty:
            for tp, value in sorted(dict(m.lag).items(), key=lambda kv: _tp_key(kv[0])):
                lag.add_metric([str(tp.topic), str(tp.partition)], value)
        yield lag

    def _histogram(self, empty: bool) -> HistogramMetricFamily:
        name = "ledger_consumer_batch_duration_seconds"
        doc = "Time to settle one batch: dead letters, append, positions, offset commit"
        if empty:
            return HistogramMetricFamily(name, doc)
        latency = self.metrics.batch_latency
        counts = list(latency.counts)
        running, buckets = 0, []
        for bound, count in zip(latency.buckets, counts, strict=True):
            running += count
            label = "+Inf" if math.isinf(bound) else _float(bound / 1000)
            buckets.append((label, running))
        if not buckets or buckets[-1][0] != "+Inf":
            buckets.append(("+Inf", running))
        return HistogramMetricFamily(
            name, doc, buckets=buckets, sum_value=latency.sum_ms / 1000
        )


def _tp_key(tp: Any) -> tuple[str, int]:
    return (str(tp.topic), int(tp.partition))


def _float(value: float) -> str:
    return repr(float(value))


# -- the database: projections, discrepancies ---------------------------------------------


class DatabaseCollector(Collector):
    """Projection lag and status, the ledger head and discrepancy findings, from PostgreSQL."""

    def __init__(self, conninfo: str, *, interval: float = 5.0, timeout_ms: int = 2000):
        self.conninfo = conninfo
        self.interval = interval
        self.timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._cached: list[Metric] = []
        self._read_at = -math.inf

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def describe(self) -> Iterable[Metric]:
        # Names only: registering must not touch the database.
        return [
            *_projection_families(),
            GaugeMetricFamily("ledger_events_head_position", "Highest notification id stored"),
            _findings_family(),
            GaugeMetricFamily("ledger_metrics_database_up", "1 when the last read succeeded"),
        ]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.interval:
                self._cached = self._read()
                self._read_at = now
            return list(self._cached)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=3,
                application_name="ledger-metrics",
                options=f"-c statement_timeout={self.timeout_ms}",
            )
        return self._conn

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("ledger_metrics_database_up", "1 when the last read succeeded")
        try:
            conn = self._connection()
            families = [*self._projections(conn), self._head(conn), *self._findings(conn)]
        except psycopg.Error as exc:
            # A scrape must not fail because the database is away: report it as a value.
            log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [*families, up]

    @staticmethod
    def _projections(conn: psycopg.Connection[Any]) -> list[Metric]:
        lag_events, lag_seconds, position, generation, status, age = _projection_families()
        rows = conn.execute(
            "SELECT projection, generation, status, position, lag_events, lag_seconds,"
            " EXTRACT(EPOCH FROM clock_timestamp() - updated_at)"
            " FROM projection_status ORDER BY projection"
        ).fetchall()
        for name, gen, state, pos, events, seconds, since in rows:
            lag_events.add_metric([name], events or 0)
            lag_seconds.add_metric([name], float(seconds or 0))
            position.add_metric([name], pos or 0)
            generation.add_metric([name], gen or 0)
            age.add_metric([name], float(since or 0))
            states = PROJECTION_STATUSES + (() if state in PROJECTION_STATUSES else (state,))
            for candidate in states:
                status.add_metric([name, candidate], 1 if candidate == state else 0)
        return [lag_events, lag_seconds, position, generation, status, age]

    @staticmethod
    def _head(conn: psycopg.Connection[Any]) -> Metric:
        head = GaugeMetricFamily("ledger_events_head_position", "Highest notification id stored")
        row = conn.execute(
            "SELECT notification_id FROM ledger_events ORDER BY notification_id DESC LIMIT 1"
        ).fetchone()
        head.add_metric([], row[0] if row else 0)
        return head

    @staticmethod
    def _findings(conn: psycopg.Connection[Any]) -> list[Metric]:
        """Findings by severity (and status) — only once the engine published its view."""
        columns = {
            row[0] for row in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('discrepancies')"
                " AND attnum > 0 AND NOT attisdropped"
            )
        }
        if "severity" not in columns:
            return []
        family = _findings_family()
        status = "status" if "status" in columns else "'unknown'"
        rows = conn.execute(
            f"SELECT COALESCE(severity::text, 'none'), COALESCE({status}::text, 'unknown'),"
            " count(*) FROM discrepancies GROUP BY 1, 2 ORDER BY 1, 2".encode()
        ).fetchall()
        for severity, state, count in rows:
            family.add_metric([severity, state], count)
        return [family]


def _projection_families() -> list[GaugeMetricFamily]:
    return [
        GaugeMetricFamily(
            "ledger_projection_lag_events",
            "Events stored but not yet folded by the projection (at its last status report)",
            labels=["projection"],
        ),
        GaugeMetricFamily(
            "ledger_projection_lag_seconds",
            "recorded_at of the ledger head minus recorded_at of the projection's position",
            labels=["projection"],
        ),
        GaugeMetricFamily(
            "ledger_projection_position", "Last notification id folded", labels=["projection"]
        ),
        GaugeMetricFamily(
            "ledger_projection_generation", "Active table generation", labels=["projection"]
        ),
        GaugeMetricFamily(
            "ledger_projection_status",
            "1 for the projection's current status (running, caught_up, stopped, failed)",
            labels=["projection", "status"],
        ),
        GaugeMetricFamily(
            "ledger_projection_status_age_seconds",
            "Seconds since the runner last reported; grows when no runner is alive",
            labels=["projection"],
        ),
    ]


def _findings_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ledger_discrepancy_findings",
        "Discrepancy findings in the discrepancies view, by severity and status",
        labels=["severity", "status"],
    )


# -- any process's own counters ----------------------------------------------------------


class CountersCollector(Collector):
    """Numbers another process already keeps, e.g. ``publisher.stats.as_dict()``.

    ``read()`` returns name → number; each becomes ``<prefix>_<name>_total`` (a counter), or
    ``<prefix>_<name>`` (a gauge) when the name is in ``gauges`` — positions, sizes. Values
    that are not numbers are skipped, so a stats dict can be passed as it is.
    """

    def __init__(
        self, prefix: str, read: Callable[[], Mapping[str, Any]], *,
        gauges: Iterable[str] = ("position",), doc: str = "",
    ):
        self.prefix = prefix
        self.read = read
        self.gauges = frozenset(gauges)
        self.doc = doc or f"{prefix} counters"

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        for key, number in sorted(self.read().items()):
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            name = f"{self.prefix}_{key}"
            if key in self.gauges:
                families.append(GaugeMetricFamily(name, self.doc, value=number))
            else:
                families.append(CounterMetricFamily(name, self.doc, value=number))
        return families


# -- the last verify ----------------------------------------------------------------------

VERIFY_GAUGES: Sequence[tuple[str, str, str]] = (
    ("ledger_verify_last_run_timestamp_seconds", "finished_at", "When the last verify finished"),
    ("ledger_verify_last_ok", "ok", "1 when the last verify found every chain intact"),
    ("ledger_verify_last_problems", "problems", "Problems the last verify reported"),
    ("ledger_verify_last_verified_events", "verified_events", "Events the last verify checked"),
    ("ledger_verify_last_unanchored_events", "unanchored_events",
     "Events after the last checkpoint at the last verify"),
    ("ledger_verify_last_duration_seconds", "duration_seconds", "How long the last verify ran"),
)


class VerifyCollector(Collector):
    """The last ``ledger verify`` result; nothing at all until a verify has run."""

    def __init__(self, path: Path):
        self.path = path

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(name, doc) for name, _, doc in VERIFY_GAUGES]

    def collect(self) -> Iterable[Metric]:
        result = read_verify_result(self.path)
        if result is None:
            return []
        return list(verify_families(result))


def read_verify_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("metrics: unreadable verify result %s: %s", path, type(exc).__name__)
        return None
    return data if isinstance(data, dict) else None


def verify_families(result: Mapping[str, Any]) -> Iterator[GaugeMetricFamily]:
    for name, key, doc in VERIFY_GAUGES:
        value = result.get(key)
        if value is None:
            continue
        yield GaugeMetricFamily(name, doc, value=float(value))
