"""The raw-HL7 topic hook of ``ledger consume``: records in, events and refusals out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kafka.structs import TopicPartition

from consumers.hl7 import Session
from consumers.hl7.kafka_hook import Hl7RecordTranslator, translators_for
from consumers.kafka.batch import build_batch
from ledger.settings import LedgerSettings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
IPEC = (FIXTURES / "ihe_tf9_ipec_oru_r42_delivery_start.hl7").read_bytes()


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def test_an_hl7_record_becomes_its_events_with_received_at_and_an_hl7_origin() -> None:
    record = Record("hl7", 0, 7, IPEC, headers=[("x-received-at",
                                                  b"2026-03-14T08:05:00+00:00")])
    accepted, refused = Hl7RecordTranslator(Session())(record)
    assert refused == []
    assert [i.event.type for i in accepted] == ["infusion.started", "program.confirmed"]
    assert all(i.event.received_at.isoformat() == "2026-03-14T08:05:00+00:00" for i in accepted)
    origin = accepted[0].origin
    assert origin.kind == "hl7"
    assert origin.ref.startswith("6358051206735492253|sha256:")
    assert origin.ref.endswith("|kafka:hl7:0:7")


def test_an_untranslatable_record_is_refused_with_an_hl7_code_and_the_reason() -> None:
    record = Record("hl7", 0, 8, b"MSH|^~\\&|A|B|C|D|20250101000000+0000||ADT^A01|1|P|2.6\r")
    accepted, refused = Hl7RecordTranslator(Session())(record)
    assert accepted == []
    (refusal,) = refused
    assert refusal.code == "hl7_unsupported_profile"
    assert "ADT^A01" in refusal.detail


def test_an_acknowledgement_record_yields_nothing_and_is_not_refused() -> None:
    ack = (FIXTURES / "ihe_tf9_pcd03_ack_o15_ex1_accept.hl7").read_bytes()
    assert Hl7RecordTranslator(Session())(Record("hl7", 0, 9, ack)) == ([], [])


def test_build_batch_uses_the_translator_of_the_hl7_topic_and_json_for_the_others() -> None:
    hl7_tp, json_tp = TopicPartition("hl7", 0), TopicPartition("events", 0)
    polled = {
        hl7_tp: [Record("hl7", 0, 0, IPEC), Record("hl7", 0, 1, b"garbage")],
        json_tp: [Record("events", 0, 0, b"{not json")],
    }
    batch = build_batch(polled, {"hl7": Hl7RecordTranslator(Session())})
    assert [i.event.type for i in batch.accepted] == ["infusion.started", "program.confirmed"]
    assert [r.offset for r in batch.accepted_records] == [0, 0]  # one record, two events
    assert sorted(r.code for r in batch.refused) == ["hl7_unparseable", "invalid_json"]
    assert batch.next_offsets == {hl7_tp: 2, json_tp: 1}


def test_the_hook_is_registered_only_when_the_hl7_topic_is_consumed() -> None:
    settings = LedgerSettings(hl7_kafka_topic="raw-hl7")
    assert set(translators_for(settings, ("raw-hl7", "infusion.events.v1"))) == {"raw-hl7"}
    assert translators_for(settings, ("infusion.events.v1",)) == {}
