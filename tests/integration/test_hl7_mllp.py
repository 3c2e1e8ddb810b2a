"""MLLP end to end: python-hl7's MLLP client → ``ledger mllp`` listener → the ledger.

Two paths over loopback on free ports: the listener appending directly (sink ``ledger``)
into a fresh PostgreSQL database, and the default path — listener → HL7 Kafka topic on a
real Tansu broker → ``KafkaIngestor`` with the HL7 translator hook → PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import hl7
import psycopg
import pytest
from hl7.client import MLLPClient
from kafka import KafkaProducer

from consumers.hl7 import Session
from consumers.hl7.kafka_hook import Hl7RecordTranslator
from consumers.hl7.mllp import MllpListener
from consumers.hl7.sinks import KafkaSink, LedgerSink
from consumers.kafka.config import IngestConfig, KafkaConnection
from consumers.kafka.consumer import KafkaIngestor
from consumers.kafka.retry import Backoff
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from tests.support.tansu import TansuBroker, free_port, wait_until

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
IPEC = (FIXTURES / "ihe_tf9_ipec_oru_r42_delivery_start.hl7").read_bytes()
ALARM = (FIXTURES / "ihe_tf9_pcd04_oru_r40_bbraun_occlusion_start.hl7").read_bytes()


@contextmanager
def listening(sink: Any) -> Iterator[int]:
    """The listener on a free loopback port, served by an event loop on its own thread."""
    loop = asyncio.new_event_loop()
    listener = MllpListener(sink, port=0)
    _, port = loop.run_until_complete(listener.start())
    thread = threading.Thread(target=loop.run_forever, name="mllp", daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def send(port: int, message: bytes) -> hl7.Message:
    with MLLPClient("127.0.0.1", port) as client:
        client.socket.settimeout(30)
        reply = client.send_message(message)
    return hl7.parse(reply.strip(b"\x0b\x1c\r").decode())


def stored(database: ConnectionParams) -> list[dict[str, Any]]:
    with psycopg.connect(database.conninfo) as conn:
        rows = conn.execute("SELECT state FROM ledger_events ORDER BY notification_id").fetchall()
    return [json.loads(bytes(state)) for (state,) in rows]


def test_messages_sent_over_mllp_land_in_the_ledger_before_they_are_acknowledged(
    database: ConnectionParams,
) -> None:
    with EventStore(database) as store:
        sink = LedgerSink(store, Session())
        with listening(sink) as port:
            first = send(port, IPEC)
            assert str(first.segment("MSA")(1)) == "CA"
            assert str(first.segment("MSA")(2)) == "6358051206735492253"
            assert len(stored(database)) == 2  # appended before the ACK was sent
            assert str(send(port, ALARM).segment("MSA")(1)) == "CA"
            again = send(port, IPEC)  # a resend: acknowledged, absorbed as duplicates
            assert str(again.segment("MSA")(1)) == "CA"
            refused = send(port, IPEC.replace(b"ORU^R42^ORU_R01", b"ADT^A01^ADT_A01"))
            assert str(refused.segment("MSA")(1)) == "CR"
            assert "profile_mismatch" in str(refused.segment("ERR"))  # the reason, in ERR-8
    rows = stored(database)
    assert [r["event"]["type"] for r in rows] == [
        "infusion.started", "program.confirmed", "alarm.raised"]
    assert all(r["origin"]["kind"] == "hl7" for r in rows)
    for row in rows:
        assert datetime.fromisoformat(row["event"]["received_at"]).tzinfo is not None
    assert sink.counts["duplicates"] == 2 and sink.counts["dead_lettered"] == 1


@pytest.mark.kafka
def test_mllp_to_the_hl7_topic_then_consume_translates_and_appends(
    database: ConnectionParams, tansu: TansuBroker
) -> None:
    topic, dlq = tansu.create_topic(prefix="hl7"), tansu.create_topic(prefix="dlq")
    producer = KafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all", linger_ms=5)
    try:
        with listening(KafkaSink(producer, topic)) as port:
            assert str(send(port, IPEC).segment("MSA")(1)) == "CA"
            assert str(send(port, b"MSH|^~\\&|X|Y|Z|W|20250101000000+0000||ADT^A01|9|P|2.6")
                       .segment("MSA")(1)) == "AA"  # original mode; handed on, dead-lettered later
    finally:
        producer.close(timeout=5)
    config = IngestConfig(
        connection=KafkaConnection(tansu.bootstrap), topics=(topic,),
        group_id=f"g-{uuid.uuid4().hex[:8]}", deadletter_topic=dlq,
        session_timeout_ms=6000, heartbeat_interval_ms=1000,
    )
    with EventStore(database) as store:
        ingestor = KafkaIngestor(store, config, backoff=Backoff(initial_s=0.1, max_s=1.0),
                                 translators={topic: Hl7RecordTranslator(Session())})
        thread = threading.Thread(target=ingestor.run, daemon=True)
        thread.start()
        try:
            wait_until(lambda: ingestor.metrics.records >= 2, timeout=60, what="both records")
        finally:
            ingestor.stop()
            thread.join(timeout=60)
    rows = stored(database)
    assert [r["event"]["type"] for r in rows] == ["infusion.started", "program.confirmed"]
    assert rows[0]["origin"]["ref"].endswith(f"|kafka:{topic}:0:0")
    assert rows[0]["event"]["received_at"]  # stamped by the listener, carried in a header
    assert ingestor.metrics.deadlettered == 1


def test_the_ledger_mllp_command_serves_until_sigterm_and_reports_its_counts(
    database: ConnectionParams,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATABASE_URL"] = database.url()
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger_cli.main", "mllp", "--sink", "ledger", "--port",
         str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: _accepts(port) or process.poll() is not None, timeout=60,
                   what="ledger mllp to listen")
        assert str(send(port, IPEC).segment("MSA")(1)) == "CA"
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["messages_handled"] == 1 and summary["appended"] == 2
    assert len(stored(database)) == 2


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
