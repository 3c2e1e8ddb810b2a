"""The simulator's building blocks: scheduler, clocks, ids, arithmetic, sinks and the CLI."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from simulator import clock
from simulator.engine import Engine, Process
from simulator.events import kafka_key, uuid5_text
from simulator.infusions import Program
from simulator.medications import FORMULARY, flow_for
from simulator.programs import mistake
from simulator.sinks import KafkaSink, MemorySink, OrderedOutput


def test_work_at_the_same_time_runs_in_the_order_it_was_scheduled() -> None:
    engine, seen = Engine(0), list[str]()
    for name in "abc":
        engine.call_at(1_000, seen.append, name)
    engine.call_at(500, seen.append, "first")
    engine.run_until(2_000)
    assert seen == ["first", "a", "b", "c"]


def test_a_process_resumes_after_the_delay_it_yields() -> None:
    engine, seen = Engine(0), list[tuple[str, int]]()

    def nurse() -> Process:
        seen.append(("scan", engine.now))
        yield 5_000
        seen.append(("start", engine.now))

    engine.spawn(nurse())
    assert engine.run_until(60_000) == 60_000
    assert seen == [("scan", 0), ("start", 5_000)]


def test_nothing_after_the_end_runs() -> None:
    engine, seen = Engine(0), list[str]()
    engine.call_at(10, seen.append, "in")
    engine.call_at(11, seen.append, "out")
    engine.run_until(10)
    assert seen == ["in"]


def test_instants_render_with_the_source_offset() -> None:
    ms = clock.parse_instant("2026-03-01T06:00:00.250Z")
    assert clock.fmt(ms) == "2026-03-01T06:00:00.250Z"
    assert clock.fmt(ms, -300) == "2026-03-01T01:00:00.250-05:00"
    assert clock.parse_instant("2026-03-01T01:00:00.250-05:00") == ms
    with pytest.raises(ValueError, match="offset"):
        clock.parse_instant("2026-03-01T06:00:00")


def test_fast_event_ids_are_exactly_uuid5() -> None:
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "x")
    for n in range(200):
        assert uuid5_text(namespace.bytes, str(n)) == str(uuid.uuid5(namespace, str(n)))


@pytest.mark.parametrize(("event_type", "key"), [
    ("order.placed", "O1"), ("documentation.validated", "O1"), ("bcma.scan_recorded", "P1"),
    ("patient.located", "P1"), ("infusion.started", "PUMP-1"), ("alarm.raised", "PUMP-1"),
    ("ders.limit_alert_raised", "PUMP-1"), ("program.confirmed", "PUMP-1"),
    ("pump.communication_changed", "PUMP-1"),
])
def test_kafka_keys_follow_the_transport_rules(event_type: str, key: str) -> None:
    subject = {"order_id": "O1", "patient_id": "P1", "pump_id": "PUMP-1"}
    assert kafka_key(event_type, subject) == key


def test_flows_follow_the_ordered_dose_exactly() -> None:
    heparin, dopamine = FORMULARY["heparin"], FORMULARY["dopamine"]
    assert flow_for(Decimal(18), "[iU]/kg/h", Decimal(25000), "[iU]", Decimal(250),
                    Decimal(80)) == Decimal("14.4")
    assert flow_for(Decimal(5), "ug/kg/min", dopamine.amount or Decimal(0), "mg",
                    Decimal(250), Decimal(80)) == Decimal("15.0")
    assert flow_for(Decimal(8), "ug/min", Decimal(4), "mg", Decimal(250), None) == Decimal("30.0")
    assert heparin.high_alert and dopamine.vasoactive


def test_a_decimal_error_multiplies_the_heparin_rate_by_ten() -> None:
    from random import Random

    base = Program(drug=FORMULARY["heparin"], rate=Decimal("14.4"), vtbi=Decimal(250),
                   dose=Decimal(18), dose_unit="[iU]/kg/h", amount=Decimal(25000),
                   amount_unit="[iU]", volume=Decimal(250), weight=Decimal(80))
    from simulator.errors import ErrorKind

    wrong = mistake(ErrorKind.DECIMAL_ERROR, base, Random(1))
    assert wrong.rate == Decimal("144.0") and wrong.mode == "manual"


def test_lines_are_released_in_arrival_order() -> None:
    sink = MemorySink()
    output = OrderedOutput(sink)
    output.push(300, "k", b"late")
    output.push(100, "k", b"early")
    output.push(200, "k", b"middle")
    output.release(250)
    assert [v for _k, v in sink.messages] == [b"early", b"middle"]
    output.drain()
    assert [v for _k, v in sink.messages][-1] == b"late"


class FakeFuture:
    """kafka-python's FutureRecordMetadata as the sink uses it: callbacks get the metadata."""

    def __init__(self, partition: int, offset: int):
        self.metadata = SimpleNamespace(partition=partition, offset=offset)

    def add_callback(self, callback: Any) -> FakeFuture:
        callback(self.metadata)
        return self


class FakeProducer:
    instances: ClassVar[list[FakeProducer]] = []

    def __init__(self, **options: Any):
        self.options, self.closed = options, False
        self.sent: list[tuple[str, bytes, bytes]] = []
        FakeProducer.instances.append(self)

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.sent.append((topic, key, value))
        # Every message lands on partition 0 at the next offset.
        return FakeFuture(0, len(self.sent) - 1)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_the_kafka_sink_produces_keyed_messages_with_acks_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kafka

    monkeypatch.setattr(kafka, "KafkaProducer", FakeProducer)
    sink = KafkaSink("broker:9092", "infusion.events.v1", start_ms=0, speedup=0)
    sink.write("PUMP-1", b'{"a":1}', 10)
    sink.write("PUMP-2", b'{"a":2}', 20)
    sink.close()
    producer = FakeProducer.instances[-1]
    assert producer.options == {"bootstrap_servers": "broker:9092", "acks": "all",
                                "linger_ms": 5, "compression_type": "gzip"}
    assert producer.sent == [("infusion.events.v1", b"PUMP-1", b'{"a":1}'),
                             ("infusion.events.v1", b"PUMP-2", b'{"a":2}')]
    assert producer.closed
    # The demo waits for the ledger to store offsets up to these acknowledged ends.
    assert sink.end_offsets == {0: 2}


def test_ledger_simulate_writes_events_truth_and_a_json_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from ledger_cli.main import main

    out, truth = tmp_path / "events.ndjson", tmp_path / "truth.json"
    code = main(["simulate", "--seed", "9", "--hours", "0.5", "--units", "2", "--beds", "16",
                 "--pumps", "30", "--out", str(out), "--truth", str(truth)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["lines"] == len(out.read_bytes().splitlines())
    assert json.loads(truth.read_text())["format"] == "infusion-ledger-simulator-truth/1"
    assert set(summary) >= {"events_by_type", "truth", "malformed", "duplicates"}
