"""``ledger publish-findings`` against a real local webhook and a real Kafka broker: exactly
the S1 findings are paged, each with its finding id as idempotency key; a publisher killed
mid-send loses nothing and re-sends only the page it had not recorded; rebuilding the
discrepancy projection pages nobody again.

The webhook (``http.server`` on a free loopback port, in a thread) records every request
and can leave one request received but unanswered until the test has SIGKILLed the
publisher — the worst moment to die: the page arrived, its delivery was never recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from ledger.store.database import ConnectionParams
from projections.discrepancies.projection import DiscrepanciesProjection
from projections.runtime.rebuild import rebuild
from publisher.loop import Publisher
from publisher.pages import PAGES
from publisher.webhook import WebhookSink
from tests.integration.test_discrepancies import _project, _rows, _story, _write
from tests.support.cli import ledger
from tests.support.tansu import TansuBroker
from tests.unit.test_rules_support import Story

pytestmark = pytest.mark.integration

HOOK = "/hooks/ledger"


class Pager:
    """A paging webhook: every request kept (idempotency key, body); ``hang_on`` (the n-th
    request) is received and then never answered; ``statuses`` answers the first requests
    with these codes instead of 202."""

    def __init__(self, hang_on: int | None = None, statuses: tuple[int, ...] = ()):
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.hang_on = hang_on
        self.statuses = list(statuses)
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{HOOK}"

    @property
    def keys(self) -> list[str]:
        return [key for key, _body, _headers in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        pager = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                assert self.path == HOOK, self.path
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with pager.lock:
                    pager.requests.append((self.headers["Idempotency-Key"], body,
                                           dict(self.headers.items())))
                    number = len(pager.requests)
                    status = pager.statuses.pop(0) if pager.statuses else 202
                if number == pager.hang_on:  # received, never answered
                    pager.hanging.set()
                    pager.release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def __enter__(self) -> Pager:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _later() -> Story:
    """A second patient's 10x heparin error, after the first story: one more S1 page."""
    story = Story(pump="PUMP-2", patient="P2")
    story.located(210)
    story.order(211, order_id="O2")
    story.associate(212)
    story.auto_start(220, "144", order="O2")
    story.clock_until(240)
    return story


def _load(database: ConnectionParams, tmp_path: Path, story: Story) -> None:
    path = _write(tmp_path / f"story-{len(story.events)}.ndjson", story.events)
    assert ledger("import", str(path), database=database).code == 0
    _project(database)


def _s1(database: ConnectionParams) -> set[str]:
    return {str(r["finding_id"]) for r in _rows(
        database, "SELECT finding_id FROM discrepancies WHERE severity = 'S1'")}


def _deliveries(database: ConnectionParams) -> list[dict[str, Any]]:
    return _rows(database, "SELECT d.target, d.seq, d.outcome, d.status_code, d.attempts,"
                 " o.finding_id::text AS finding_id FROM discrepancy_deliveries d"
                 " JOIN discrepancy_outbox o USING (seq) ORDER BY d.seq")


@pytest.fixture
def findings(database: ConnectionParams, tmp_path: Path) -> ConnectionParams:
    """A ledger with the heparin story imported and projected: three S1 pages enqueued
    among S2/S3 findings that must not be paged."""
    _load(database, tmp_path, _story())
    severities = {r["severity"] for r in _rows(database, "SELECT severity FROM discrepancies")}
    assert {"S1", "S2", "S3"} <= severities
    return database


def test_exactly_the_s1_findings_reach_the_webhook_once_each_with_their_id_as_key(
    findings: ConnectionParams,
) -> None:
    with Pager() as pager:
        result = ledger("publish-findings", "--url", pager.url, "--once", database=findings)
        assert result.code == 0, result.stderr
        s1 = _s1(findings)
        assert len(s1) == 3 and sorted(pager.keys) == sorted(s1)
        for key, body, headers in pager.requests:
            assert body["type"] == "discrepancy.page" and body["severity"] == "S1"
            assert body["finding_id"] == key == body["finding"]["finding_id"]
            assert body["finding"]["severity"] == "S1" and body["finding"]["evidence"]
            assert headers["Content-Type"] == "application/json"
            assert headers["X-Ledger-Outbox-Id"] == body["outbox_id"]
        rate = next(b for _k, b, _h in pager.requests if b["rule_id"] == "R01")
        assert (rate["patient_id"], rate["unit"]) == ("P1", "MICU")
        assert rate["finding"]["evidence"]["running_ml_h"] == "144"
        assert result.summary["sent"] == result.summary["acknowledged"] == 3
        assert [d["outcome"] for d in _deliveries(findings)] == ["acknowledged"] * 3

        again = ledger("publish-findings", "--url", pager.url, "--once", database=findings)
        assert again.code == 0 and again.summary["sent"] == 0
        assert len(pager.requests) == 3


def test_a_rebuild_of_the_discrepancy_projection_pages_nobody_again(
    findings: ConnectionParams,
) -> None:
    with Pager() as pager:
        Publisher(findings.conninfo, WebhookSink(pager.url), feed=PAGES).run(once=True)
        assert len(pager.requests) == 3
        outbox = _rows(findings, "SELECT outbox_id FROM discrepancy_outbox ORDER BY seq")
        result = rebuild(findings.conninfo, DiscrepanciesProjection())
        assert result.new_generation == 2
        _project(findings)  # the rebuilt generation is now the live one, and caught up
        assert _rows(findings, "SELECT outbox_id FROM discrepancy_outbox ORDER BY seq") == outbox
        stats = Publisher(findings.conninfo, WebhookSink(pager.url), feed=PAGES).run(once=True)
        assert stats.sent == 0 and len(pager.requests) == 3


def test_a_publisher_killed_mid_send_loses_nothing_and_resends_only_the_unrecorded_page(
    findings: ConnectionParams, tmp_path: Path,
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    with Pager(hang_on=2) as pager:
        environment.update({"LEDGER_DATABASE_URL": findings.url(),
                            "LEDGER_FINDINGS_WEBHOOK_URL": pager.url})
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_cli.main", "publish-findings"],
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert pager.hanging.wait(60), process.stderr.read() if process.stderr else ""
        finally:
            process.kill()  # SIGKILL: no clean-up, no last delivery row
            process.wait(30)
        pager.release.set()
        assert len(_deliveries(findings)) == 1, "the second page arrived but was not recorded"
        _load(findings, tmp_path, _later())  # the ledger moves on while the pager is down

        result = ledger("publish-findings", "--once", database=findings,
                        env={"LEDGER_FINDINGS_WEBHOOK_URL": pager.url})
        assert result.code == 0, result.stderr
        s1 = _s1(findings)
        assert len(s1) == 4 and set(pager.keys) == s1, "every S1 finding paged"
        assert len(pager.keys) == 5 and pager.keys[1] == pager.keys[2], \
            "only the unrecorded page went out twice, with the same idempotency key"
        deliveries = _deliveries(findings)
        assert [d["outcome"] for d in deliveries] == ["acknowledged"] * 4
        assert sorted(d["finding_id"] for d in deliveries) == sorted(s1)
        assert result.summary["sent"] == 3


def test_an_unavailable_webhook_is_retried_and_a_refused_page_does_not_block_the_rest(
    findings: ConnectionParams,
) -> None:
    with Pager(statuses=(503, 503, 422)) as pager:
        sink = WebhookSink(pager.url)
        stats = Publisher(findings.conninfo, sink, feed=PAGES, retry_max_seconds=1,
                          give_up_after=5).run(once=True)
    assert (stats.retries, stats.acknowledged, stats.rejected) == (2, 2, 1)
    deliveries = _deliveries(findings)
    assert [(d["outcome"], d["status_code"], d["attempts"]) for d in deliveries] == [
        ("rejected", 422, 3), ("acknowledged", 202, 1), ("acknowledged", 202, 1)]
    assert len(pager.keys) == 5 and len(set(pager.keys)) == 3


def test_deliveries_are_append_only(findings: ConnectionParams) -> None:
    with Pager() as pager:
        Publisher(findings.conninfo, WebhookSink(pager.url), feed=PAGES).run(once=True)
    with psycopg.connect(findings.conninfo) as conn:
        for statement in ("UPDATE discrepancy_deliveries SET outcome = 'rejected'",
                          "DELETE FROM discrepancy_deliveries", "TRUNCATE discrepancy_deliveries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
            conn.rollback()
    assert len(_deliveries(findings)) == 3


@pytest.mark.kafka
def test_the_kafka_target_gets_each_page_keyed_by_patient_with_the_finding_id_header(
    findings: ConnectionParams, tansu: TansuBroker,
) -> None:
    topic = tansu.create_topic(prefix="pages")
    with Pager() as pager:
        result = ledger("publish-findings", "--target", "both", "--url", pager.url,
                        "--topic", topic, "--once", database=findings,
                        env={"LEDGER_KAFKA_BOOTSTRAP_SERVERS": tansu.bootstrap})
        assert result.code == 0, result.stderr
        assert len(pager.requests) == 3
    targets = {t["target"]: t for t in result.summary["targets"]}
    assert targets[f"kafka:{topic}"]["acknowledged"] == 3
    outbox = _rows(findings, "SELECT seq, finding_id::text AS finding_id, patient_id"
                   " FROM discrepancy_outbox ORDER BY seq")
    consumer = KafkaConsumer(bootstrap_servers=tansu.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    messages = [m for _, m in zip(outbox, consumer, strict=False)]
    consumer.close()
    assert [(m.key.decode(), dict(m.headers)["idempotency-key"].decode()) for m in messages] \
        == [(r["patient_id"], r["finding_id"]) for r in outbox]
    assert [json.loads(m.value)["finding"]["severity"] for m in messages] == ["S1"] * 3
    recorded = _rows(findings, "SELECT target, count(*) AS n FROM discrepancy_deliveries"
                     " GROUP BY target ORDER BY target")
    assert recorded == [{"target": f"http:{pager.url}", "n": 3},
                        {"target": f"kafka:{topic}", "n": 3}]
