"""One registry per process, and the ``/metrics`` HTTP endpoint of processes without the API.

Each process gets its own :class:`CollectorRegistry` (never prometheus-client's global one),
so tests and embedded uses cannot leak series into each other. It holds the process and
platform collectors, a ``ledger_process_info`` series naming the ledger command, and the
readers of :mod:`observability.collectors` that apply to that process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from importlib import metadata
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Info,
    start_http_server,
)
from prometheus_client.registry import Collector

from ledger.settings import LedgerSettings
from observability.collectors import (
    DatabaseCollector,
    IngestCollector,
    IngestMetricsLike,
    VerifyCollector,
)
from observability.verify import verify_result_path

log = logging.getLogger(__name__)


def ledger_version() -> str:
    try:
        return metadata.version("infusion-ledger")
    except metadata.PackageNotFoundError:  # running from a source tree (the container image)
        return "unknown"


def build_registry(
    process: str,
    *,
    settings: LedgerSettings | None = None,
    conninfo: str | None = None,
    ingest: IngestMetricsLike | None = None,
    extra: tuple[Collector, ...] = (),
) -> CollectorRegistry:
    """A registry for ``process`` (consume, project, serve, mllp, publish-docs, ...)."""
    registry = CollectorRegistry()
    # The standard process_* / python_* series, as in the global registry.
    for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(standard)
    info = Info("ledger_process", "The ledger command this process runs", registry=registry)
    info.info({"process": process, "version": ledger_version()})
    if ingest is not None:
        registry.register(IngestCollector(ingest))
    if conninfo is not None:
        interval = settings.metrics_db_interval_seconds if settings else 5.0
        registry.register(DatabaseCollector(conninfo, interval=interval))
    if settings is not None:
        registry.register(VerifyCollector(verify_result_path(settings)))
    for collector in extra:
        registry.register(collector)
    return registry


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint (a daemon thread); ``close()`` stops it."""

    registry: CollectorRegistry
    host: str
    port: int
    _server: WSGIServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        # prometheus-client has no public way to list a registry's collectors.
        for collector in list(getattr(self.registry, "_collector_to_names", {})):
            close = getattr(collector, "close", None)
            if callable(close):
                close()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (port 0: any free port, for tests)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics", host, bound,
             extra={"event": "metrics_started", "port": bound})
    return MetricsServer(registry, host, int(bound), server, thread)


def start_process_metrics(
    settings: LedgerSettings,
    process: str,
    *,
    conninfo: str | None = None,
    ingest: IngestMetricsLike | None = None,
    extra: tuple[Collector, ...] = (),
) -> MetricsServer | None:
    """The one call a long-running command makes; ``None`` when LEDGER_METRICS_PORT is 0."""
    if settings.metrics_port == 0:
        return None
    registry = build_registry(
        process, settings=settings, conninfo=conninfo, ingest=ingest, extra=extra
    )
    return serve_metrics(registry, settings.metrics_host, settings.metrics_port)
