"""``/metrics`` scraped over HTTP from a real process endpoint and from the real API app.

The collectors read real state: an ``IngestMetrics`` object updated the way the consumer
updates it, ``projection_status`` rows written by real projection runs, a ``discrepancies``
view (the engine's when it exists, otherwise a stand-in with known counts) and the result
of a real ``verify`` of the same database.
"""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka.structs import TopicPartition
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.kafka.metrics import IngestMetrics
from ledger.contract import parse_event
from ledger.settings import LedgerSettings
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.verify import verify
from observability import instrument_app, record_verify, start_process_metrics
from observability.collectors import DatabaseCollector
from observability.process import build_registry
from projections import registry
from projections.runtime.runner import ProjectionRunner
from tests.support.events import VALID_EVENTS

pytestmark = pytest.mark.integration

CONSUMER_METRICS = {
    "ledger_consumer_records_total", "ledger_events_ingested_total",
    "ledger_events_duplicates_total", "ledger_events_deadlettered_total",
    "ledger_consumer_batches_total", "ledger_consumer_retries_total",
    "ledger_consumer_rebalances_total", "ledger_consumer_batch_duration_seconds_bucket",
    "ledger_consumer_batch_duration_seconds_sum", "ledger_consumer_batch_duration_seconds_count",
    "ledger_consumer_lag_messages",
}
DATABASE_METRICS = {
    "ledger_projection_lag_events", "ledger_projection_lag_seconds",
    "ledger_projection_position", "ledger_projection_generation", "ledger_projection_status",
    "ledger_projection_status_age_seconds", "ledger_events_head_position",
    "ledger_discrepancy_findings", "ledger_metrics_database_up",
}
VERIFY_METRICS = {
    "ledger_verify_last_run_timestamp_seconds", "ledger_verify_last_ok",
    "ledger_verify_last_problems", "ledger_verify_last_verified_events",
    "ledger_verify_last_unanchored_events", "ledger_verify_last_duration_seconds",
}
STANDIN_FINDINGS = [("S1", "open"), ("S1", "open"), ("S2", "open"), ("S3", "resolved")]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def names(found: Samples) -> set[str]:
    return {name for name, _ in found}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def process_info(found: Samples) -> dict[str, str]:
    return next(dict(labels) for name, labels in found if name == "ledger_process_info")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def ledger(database: ConnectionParams) -> Iterator[ConnectionParams]:
    """The contract's example events, projected, and the engine's findings (or a stand-in)."""
    events = [line for line in VALID_EVENTS.read_text().splitlines() if line.strip()]
    with EventStore(database) as store:
        store.append([Incoming(parse_event(line), Origin("file", f"t:{n}"))
                      for n, line in enumerate(events)])
    for projection in registry.build():
        with ProjectionRunner(database.conninfo, projection) as runner:
            runner.run_until_caught_up()
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('discrepancies') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            rows = ", ".join(f"('{s}', '{t}')" for s, t in STANDIN_FINDINGS)
            conn.execute(
                f"CREATE VIEW discrepancies AS SELECT * FROM (VALUES {rows})"
                " AS f(severity, status)".encode()
            )
    yield database


def settings_for(database: ConnectionParams, tmp_path: Path, **values: Any) -> LedgerSettings:
    return LedgerSettings(
        database_url=database.url(), data_dir=tmp_path, metrics_db_interval_seconds=0,
        metrics_host="127.0.0.1", api_pseudonym_key="test-pseudonym-key-0123456789abcdef",
        api_audit_sealer=False, api_pool_size=2, **values,
    )


def expected_findings(database: ConnectionParams) -> dict[tuple[str, str], int]:
    with psycopg.connect(database.conninfo) as conn:
        rows = conn.execute(
            "SELECT severity::text, status::text, count(*) FROM discrepancies GROUP BY 1, 2"
        ).fetchall()
    return {(severity, status): count for severity, status, count in rows}


def consumer_at_work() -> IngestMetrics:
    """Counters as ``consumers.kafka.settled.account_batch`` leaves them after three batches."""
    metrics = IngestMetrics(records=1003, ingested=990, duplicates=7, rejected=4, conflicts=2,
                            deadlettered=6, batches=3, retries=1, rebalances=1)
    for ms in (12.0, 40.0, 700.0):
        metrics.batch_latency.observe(ms)
    metrics.record_lag(TopicPartition("infusion.events.v1", 0), 1500, 1000)
    metrics.record_lag(TopicPartition("infusion.events.v1", 3), 80, 80)
    return metrics


def test_a_consumer_process_serves_ingest_projection_findings_and_verify_metrics(
    ledger: ConnectionParams, tmp_path: Path
) -> None:
    settings = settings_for(ledger, tmp_path, metrics_port=free_port())
    report = verify(ledger.conninfo)
    record_verify(report.summary(), settings, duration_seconds=0.25)
    server = start_process_metrics(
        settings, "consume", conninfo=ledger.conninfo, ingest=consumer_at_work()
    )
    assert server is not None
    try:
        found = samples(scrape(server.url))
    finally:
        server.close()

    assert names(found) >= CONSUMER_METRICS | DATABASE_METRICS | VERIFY_METRICS
    assert process_info(found)["process"] == "consume"
    assert value(found, "ledger_events_ingested_total") == 990
    assert value(found, "ledger_events_duplicates_total") == 7
    assert value(found, "ledger_events_deadlettered_total", reason="rejected") == 4
    assert value(found, "ledger_events_deadlettered_total", reason="conflict") == 2
    assert value(found, "ledger_consumer_lag_messages",
                 topic="infusion.events.v1", partition="0") == 500
    assert value(found, "ledger_consumer_lag_messages",
                 topic="infusion.events.v1", partition="3") == 0
    assert value(found, "ledger_consumer_batch_duration_seconds_count") == 3
    assert value(found, "ledger_consumer_batch_duration_seconds_bucket", le="0.05") == 2
    assert value(found, "ledger_consumer_batch_duration_seconds_sum") == pytest.approx(0.752)

    head = value(found, "ledger_events_head_position")
    assert head > 0
    for projection in registry.build():
        assert value(found, "ledger_projection_position", projection=projection.name) == head
        assert value(found, "ledger_projection_lag_events", projection=projection.name) == 0
        assert value(found, "ledger_projection_status",
                     projection=projection.name, status="caught_up") == 1
    for (severity, status), count in expected_findings(ledger).items():
        assert value(found, "ledger_discrepancy_findings",
                     severity=severity, status=status) == count

    assert value(found, "ledger_verify_last_ok") == 1
    assert value(found, "ledger_verify_last_problems") == 0
    assert value(found, "ledger_verify_last_verified_events") == report.verified_events
    assert value(found, "ledger_metrics_database_up") == 1


def test_projection_lag_shows_events_appended_since_the_last_status_report(
    ledger: ConnectionParams, tmp_path: Path
) -> None:
    registry_ = build_registry("project", settings=settings_for(ledger, tmp_path),
                               conninfo=ledger.conninfo)
    extra = [line for line in VALID_EVENTS.read_text().splitlines() if line.strip()][:5]
    with EventStore(ledger) as store:
        store.append([Incoming(parse_event(json.dumps({**json.loads(line),
                                                       "event_id": _uuid(n)})),
                               Origin("file", f"late:{n}")) for n, line in enumerate(extra)])
    # The runner reports lag when it runs; a status written now records the backlog.
    projection = registry.build()[0]
    with ProjectionRunner(ledger.conninfo, projection) as runner:
        runner.report("running")
    found = samples(generate_latest(registry_).decode())
    assert value(found, "ledger_projection_lag_events", projection=projection.name) == 5
    assert value(found, "ledger_projection_status",
                 projection=projection.name, status="running") == 1


def _uuid(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"metrics-test-{n}"))


def test_metrics_stay_up_and_say_so_when_the_database_is_unreachable() -> None:
    collector = DatabaseCollector("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2",
                                  interval=0)
    families = {f.name: f for f in collector.collect()}
    assert families["ledger_metrics_database_up"].samples[0].value == 0
    assert "ledger_projection_lag_events" not in families


def test_a_process_without_a_metrics_port_starts_no_server(tmp_path: Path) -> None:
    settings = LedgerSettings(data_dir=tmp_path, metrics_port=0)
    assert start_process_metrics(settings, "project") is None


def test_the_api_reports_latency_by_route_template_and_never_the_raw_path(
    ledger: ConnectionParams, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from projections.api import create_app

    settings = settings_for(ledger, tmp_path)
    app = create_app(settings, ledger)
    instrument_app(app, settings, conninfo=ledger.conninfo)
    with TestClient(app) as client:
        assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/health").status_code == 200
        assert client.get("/v1/patients/MRN-SECRET-4711/infusions").status_code == 401
        assert client.get("/no/such/page").status_code == 404
        response = client.get("/metrics")
    assert response.status_code == 200
    body = response.text
    assert "MRN-SECRET-4711" not in body
    found = samples(body)
    duration = "ledger_api_request_duration_seconds_count"
    assert value(found, duration, method="GET", route="/v1/health", status="200") == 2
    assert value(found, duration, method="GET",
                 route="/v1/patients/{patient_ref}/infusions", status="401") == 1
    assert value(found, duration, method="GET", route="<unmatched>", status="404") == 1
    assert "ledger_api_requests_in_flight" in names(found)
    assert process_info(found)["process"] == "serve"
    assert names(found) >= DATABASE_METRICS
