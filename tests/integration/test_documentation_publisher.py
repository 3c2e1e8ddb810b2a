"""``ledger publish-docs`` killed mid-way against a real local FHIR server: nothing lost,
nothing duplicated at the receiver.

The server (``http.server`` on a free loopback port, in a thread) implements the two FHIR
interactions the publisher uses — create with ``If-None-Exist`` and conditional update by
identifier — and counts every request. One request is applied and then left unanswered
until the test has SIGKILLed the publisher: the row was received but never acknowledged,
the worst moment to die. A restart re-sends it; the server absorbs the copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.kafka.config import KafkaConnection
from publisher.fhir_http import FhirHttpSink, _body
from publisher.kafka_sink import KafkaSink
from publisher.loop import Publisher
from tests.integration.test_documentation_feed import Docs, charting_events, docs
from tests.support.cli import ledger
from tests.support.tansu import TansuBroker

pytestmark = pytest.mark.integration
__all__ = ["docs"]  # the shared fixture

PREFIX = "/fhir/MedicationAdministration"


class FhirServer:
    """Resources by identifier, each with its versions; every request counted."""

    def __init__(self, hang_on: int | None = None, refuse: bytes | None = None):
        self.refuse = refuse  # bodies containing this get 422 (an OperationOutcome)
        self.requests: list[tuple[str, str, int]] = []
        self.resources: dict[str, list[bytes]] = {}
        self.absorbed = 0
        self.hang_on = hang_on
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def _apply(self, method: str, identifier: str, body: bytes) -> tuple[int, int]:
        with self.lock:
            versions = self.resources.get(identifier)
            if self.refuse is not None and self.refuse in body:
                status = 422
            elif versions is None:
                self.resources[identifier] = [body]
                status = 201
            elif method == "POST" or versions[-1] == body:
                self.absorbed += 1  # If-None-Exist found it / an update that changes nothing
                status = 200
            else:
                versions.append(body)
                status = 200
            self.requests.append((method, identifier, status))
            return status, len(self.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _handle(self, method: str) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                url = urlsplit(self.path)
                assert url.path == PREFIX, url.path
                if method == "POST":
                    identifier = self.headers["If-None-Exist"].removeprefix("identifier=")
                else:
                    identifier = parse_qs(url.query)["identifier"][0]
                status, number = server._apply(method, identifier, body)
                if number == server.hang_on:  # applied, never answered
                    server.hanging.set()
                    server.release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Location", f"{PREFIX}/{abs(hash(identifier))}/_history/1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        return Handler

    def __enter__(self) -> FhirServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    with FhirServer(hang_on=5) as server:
        yield server


def start_publisher(docs: Docs, url: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    environment["LEDGER_DATABASE_URL"] = docs.database.url()
    return subprocess.Popen(
        [sys.executable, "-m", "ledger_cli.main", "publish-docs", "--url", url],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_publisher_killed_mid_delivery_loses_nothing_and_duplicates_nothing(
    docs: Docs, fhir_server: FhirServer,
) -> None:
    process = start_publisher(docs, fhir_server.url)
    try:
        assert fhir_server.hanging.wait(60), process.stderr.read() if process.stderr else ""
    finally:
        process.kill()  # SIGKILL: no clean-up, no last acknowledgement
        process.wait(30)
    fhir_server.release.set()
    acked = docs.rows("SELECT count(*) AS n FROM documentation_deliveries")[0]["n"]
    assert acked == 4, "the fifth was applied by the server but never acknowledged"
    docs.append(charting_events())  # the ledger moves on while the publisher is down
    docs.project()

    result = ledger("publish-docs", "--url", fhir_server.url, "--once", database=docs.database)
    assert result.code == 0, result.stderr
    outbox = docs.rows("SELECT seq, entry_id::text AS entry_id, resource FROM"
                       " documentation_outbox ORDER BY seq")
    assert result.summary["sent"] == len(outbox) - 4
    assert len(fhir_server.requests) == len(outbox) + 1 and fhir_server.absorbed == 1
    expected: dict[str, list[bytes]] = {}
    for row in outbox:
        expected.setdefault(f"urn:ietf:rfc:3986|urn:uuid:{row['entry_id']}", []).append(
            _body(row["resource"]))
    assert fhir_server.resources == expected, \
        "one resource per entry, every version once, in order"
    deliveries = docs.rows("SELECT outcome, count(*) AS n FROM documentation_deliveries"
                           " GROUP BY outcome")
    assert deliveries == [{"outcome": "acknowledged", "n": len(outbox)}]

    again = ledger("publish-docs", "--url", fhir_server.url, "--once", database=docs.database)
    assert again.code == 0 and again.summary["sent"] == 0
    assert len(fhir_server.requests) == len(outbox) + 1


@pytest.mark.kafka
def test_the_kafka_target_gets_every_version_keyed_by_its_entry_in_outbox_order(
    docs: Docs, tansu: TansuBroker,
) -> None:
    topic = tansu.create_topic(prefix="docs")
    sink = KafkaSink(KafkaConnection(tansu.bootstrap).producer_kwargs(), topic)
    stats = Publisher(docs.database.conninfo, sink, batch_size=7).run(once=True)
    outbox = docs.rows("SELECT seq, entry_id::text AS entry_id, revision FROM"
                       " documentation_outbox ORDER BY seq")
    assert (stats.acknowledged, stats.position) == (len(outbox), outbox[-1]["seq"])
    consumer = KafkaConsumer(bootstrap_servers=tansu.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    messages = [m for _, m in zip(outbox, consumer, strict=False)]
    consumer.close()
    assert [(m.key.decode(), dict(m.headers)["x-revision"].decode()) for m in messages] == [
        (r["entry_id"], str(r["revision"])) for r in outbox]
    assert [json.loads(m.value)["position"] for m in messages] == [r["seq"] for r in outbox]


def test_a_version_the_server_refuses_for_good_is_recorded_and_the_rest_still_arrive(
    docs: Docs,
) -> None:
    with FhirServer(refuse=b'"statusReason":[{"text":"alarm"}]') as server:
        stats = Publisher(docs.database.conninfo, FhirHttpSink(server.url)).run(once=True)
    refused = docs.rows("SELECT d.status_code, o.kind FROM documentation_deliveries d"
                        " JOIN documentation_outbox o USING (seq) WHERE d.outcome = 'rejected'")
    assert refused == [{"status_code": 422, "kind": "pause"}]
    total = docs.rows("SELECT count(*) AS n FROM documentation_outbox")[0]["n"]
    assert (stats.acknowledged, stats.rejected) == (total - 1, 1)
    result = ledger("docs-gaps", "--at", "2099-01-01T00:00:00Z", database=docs.database)
    assert result.summary["by_gap"]["rejected"] == 1
