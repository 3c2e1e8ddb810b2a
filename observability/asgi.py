"""API route latency and a ``/metrics`` route, as plain ASGI (no FastAPI import here).

The route label is the route's *template* (``/v1/patients/{patient_id}``) taken from
``scope["route"]``, which Starlette's router sets on the shared scope when it matches:
never the raw path, which would carry patient ids into Prometheus (PHI) and give every
patient its own time series. Requests no route matched are labelled ``<unmatched>``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from ledger.settings import LedgerSettings
from observability.process import build_registry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Seconds. The measured API p50 is ~1 ms and p99 at saturation ~30 ms (PERFORMANCE.md §6);
# buckets resolve that range and the 5 s statement timeout above it.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"


@dataclass(frozen=True)
class ApiMetrics:
    duration: Histogram
    in_flight: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> ApiMetrics:
        return cls(
            duration=Histogram(
                "ledger_api_request_duration_seconds",
                "API request latency by method, route template and status code",
                ["method", "route", "status"], registry=registry, buckets=LATENCY_BUCKETS,
            ),
            in_flight=Gauge(
                "ledger_api_requests_in_flight", "API requests being handled", registry=registry
            ),
        )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED
    return f"{scope.get('root_path', '')}{template}"


class RouteLatencyMiddleware:
    """Times every HTTP request; add with ``app.add_middleware(RouteLatencyMiddleware, ...)``."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.duration.labels(
                scope.get("method", "GET"), route_template(scope), str(status)
            ).observe(time.perf_counter() - started)


class MetricsEndpoint:
    """An ASGI app answering with the registry's exposition (Starlette mounts it as a route)."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Collectors may query PostgreSQL (cached, with timeouts): off the event loop, so a
        # slow or unreachable database never stalls the API's other requests.
        body = await asyncio.to_thread(generate_latest, self.registry)
        await send({
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})


def metrics_endpoint(registry: CollectorRegistry) -> MetricsEndpoint:
    return MetricsEndpoint(registry)


def instrument_app(
    app: Any,
    settings: LedgerSettings,
    *,
    conninfo: str | None = None,
    path: str = "/metrics",
) -> CollectorRegistry:
    """Route latency middleware + ``/metrics`` on a Starlette/FastAPI app; returns the registry.

    The registry also carries projection lag, discrepancy counts and the last verify (read
    from ``conninfo``), so Prometheus needs only the API target for the read side.
    """
    registry = build_registry("serve", settings=settings, conninfo=conninfo)
    app.add_middleware(RouteLatencyMiddleware, metrics=ApiMetrics.register(registry))
    app.add_route(path, metrics_endpoint(registry), include_in_schema=False)
    return registry
