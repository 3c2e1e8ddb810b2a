"""Operations: Prometheus metrics and structured logs for the ledger's processes.

Collectors here only *read* state that other packages already keep — the consumer's
``IngestMetrics`` object, the ``projection_status`` rows, the ``discrepancies`` view, the
last ``ledger verify`` result — so the code that does the work needs at most one call to
be observed:

* ``start_process_metrics(settings, "consume", conninfo=..., ingest=ingestor.metrics)`` in a
  long-running command (a ``/metrics`` HTTP endpoint on ``LEDGER_METRICS_PORT``);
* ``instrument_app(app, settings, conninfo=...)`` on the API (route latency, ``/metrics``);
* ``record_verify(report.summary(), settings)`` after ``ledger verify``;
* ``configure_logging(...)`` once in the composition root (JSON lines, PHI-safe).

The package imports neither Kafka nor FastAPI (the consumer's metrics are read through a
protocol, the API through plain ASGI), so any process can use it.
"""

from __future__ import annotations

from observability.asgi import RouteLatencyMiddleware, instrument_app, metrics_endpoint
from observability.collectors import CountersCollector
from observability.logs import JsonFormatter, SecretMaskingFilter, configure_logging
from observability.process import MetricsServer, build_registry, start_process_metrics
from observability.verify import record_verify

__all__ = [
    "CountersCollector",
    "JsonFormatter",
    "MetricsServer",
    "RouteLatencyMiddleware",
    "SecretMaskingFilter",
    "build_registry",
    "configure_logging",
    "instrument_app",
    "metrics_endpoint",
    "record_verify",
    "start_process_metrics",
]
