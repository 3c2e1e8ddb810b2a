"""Conformance: every public IHE sample (tests/fixtures/hl7) translates to the expected events."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from consumers.hl7 import Session, Translation
from ledger.contract import parse_event, wire_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
PUBLIC = sorted(p.name for p in FIXTURES.glob("ihe_*.hl7"))


def translate(name: str, session: Session | None = None) -> Translation:
    (translation,) = (session or Session()).translate((FIXTURES / name).read_bytes())
    return translation


def one_event(name: str) -> Any:
    translation = translate(name)
    assert translation.outcome == "events", translation.summary()
    (event,) = translation.events
    return event


def test_the_fixtures_are_byte_for_byte_the_published_samples() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for name in PUBLIC:
        digest = hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
        assert f"| {digest} | {name} |" in readme, f"{name} was changed after it was copied"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_sample_gets_a_clear_outcome_and_valid_events(name: str) -> None:
    translation = translate(name)
    assert translation.outcome in ("events", "no_event", "dead_lettered")
    for event in translation.events:
        assert parse_event(wire_dict(event)) == event
        assert event.source.message_id == translation.control_id
        assert event.occurred_at.utcoffset() is not None


def test_ipec_delivery_start_becomes_infusion_started_and_program_confirmed() -> None:
    translation = translate("ihe_tf9_ipec_oru_r42_delivery_start.hl7")
    started, confirmed = translation.events
    assert started.type == "infusion.started"
    assert started.subject.pump_id == "0012210000000000"  # MDS OBX-18 EI-3 (EUI-64)
    assert started.subject.channel == "1"
    assert started.subject.order_id == "AB12345"  # OBR-2: the PCD-03 order
    assert started.subject.patient_id == "HO2009002"
    assert wire_dict(started)["data"] == {
        "rate": {"value": "15.4", "unit": "mL/h"},
        "dose_rate": {"value": "5.00", "unit": "ug/kg/min"},
        "vtbi": {"value": "250.0", "unit": "mL"},
        "infusate_source": "primary",
    }
    assert wire_dict(started)["occurred_at"] == "2015-10-15T13:21:06-05:00"  # OBR-7
    data = wire_dict(confirmed)["data"]
    assert confirmed.type == "program.confirmed"
    assert data["medication"] == {"code": "2222", "name": "Dopamine"}
    assert data["concentration"] == {"amount": {"value": "1.6", "unit": "mg"},
                                     "volume": {"value": "1", "unit": "mL"}}
    assert (data["mode"], data["library_mode"]) == ("auto", "library")
    assert (data["care_area"], data["library_version"]) == ("Crit Care", "DL1")
    assert data["dosing_weight"] == {"value": "82.0", "unit": "kg"}


def test_trailing_zeros_in_obx5_are_kept_exactly_as_written() -> None:
    started = translate("ihe_tf9_ipec_oru_r42_delivery_start.hl7").events[0]
    assert started.data.dose_rate is not None
    assert format(started.data.dose_rate.value, "f") == "5.00"
    assert started.data.dose_rate.value.as_tuple().exponent == -2
    assert format(started.data.vtbi.value, "f") == "250.0"


def test_unused_ipec_observations_are_reported_as_dropped_with_a_reason() -> None:
    dropped = [str(d) for d in translate("ihe_tf9_ipec_oru_r42_delivery_start.hl7").dropped]
    assert any("MDC_TIME_PD_REMAIN" in d and "not carried" in d for d in dropped)
    assert any("MDC_DEV_PUMP_SOURCE_CHANNEL_LABEL" in d for d in dropped)


def test_the_draft_ipec_sample_with_pending_code_0_translates_like_the_final_one() -> None:
    final = translate("ihe_tf9_ipec_oru_r42_delivery_start.hl7")
    draft = translate("ihe_tf9draft_ipec_oru_r42_delivery_start_pending_code0.hl7")
    assert [wire_dict(e)["data"] for e in draft.events] == [
        wire_dict(e)["data"] for e in final.events
    ]
    assert any("numeric code 0 (assignment pending)" in n for n in draft.notes)
    # Other bytes, same fact (pump, channel, event, time): the same ids, so the ledger
    # holds the delivery start once.
    assert [e.event_id for e in draft.events] == [e.event_id for e in final.events]


def test_pcd03_dopamine_request_becomes_program_auto_requested_with_a_dose() -> None:
    event = one_event("ihe_tf9_pcd03_rgv_o15_ex1_dopamine_dose.hl7")
    assert event.type == "program.auto_requested"
    assert (event.subject.pump_id, event.subject.channel) == ("A0001", "1")
    assert (event.subject.order_id, event.subject.patient_id) == ("12345", "98765")
    assert event.actor is not None and event.actor.id == "N0001"
    assert wire_dict(event)["data"] == {
        "request_id": "1",
        "medication": {"code": "1234", "name": "Dopamine"},
        "concentration": {"amount": {"value": "400", "unit": "mg"},
                          "volume": {"value": "250", "unit": "mL"}},
        "dose": {"value": "10", "unit": "ug/kg/min"},
        "vtbi": {"value": "250", "unit": "mL"},
        "dosing_weight": {"value": "85.0", "unit": "kg"},
    }
    assert wire_dict(event)["occurred_at"] == "2008-01-01T12:34:56-06:00"


def test_pcd03_saline_request_becomes_a_rate_only_program() -> None:
    event = one_event("ihe_tfwip_pcd03_rgv_o15_ex2_saline_rate_cp159.hl7")
    data = wire_dict(event)["data"]
    assert data["rate"] == {"value": "13.3", "unit": "mL/h"}
    assert "dose" not in data and "concentration" not in data
    assert data["medication"] == {"code": "5678", "name": "Normal Saline"}
    assert data["vtbi"] == {"value": "500", "unit": "mL"}


def test_accept_acknowledgements_are_understood_without_events() -> None:
    for name in ("ihe_tf9_pcd03_ack_o15_ex1_accept.hl7",
                 "ihe_tf9_pcd03_ack_o15_ex2_empty_msa2.hl7"):
        translation = translate(name)
        assert translation.outcome == "no_event"
        assert "confirms receipt only" in (translation.no_event_reason or "")


def test_a_reject_reply_to_an_unknown_request_is_dead_lettered_with_the_reason() -> None:
    translation = translate("ihe_tf9_pcd03_rrg_o16_ar_reject.hl7")
    assert translation.outcome == "dead_lettered"
    assert translation.dead_letter is not None
    assert "'102'" in translation.dead_letter.detail
    assert "pump and channel unknown" in translation.dead_letter.detail


def test_a_reject_reply_after_its_request_becomes_program_auto_rejected() -> None:
    session = Session()
    request = (FIXTURES / "ihe_tf9_pcd03_rgv_o15_ex1_dopamine_dose.hl7").read_text()
    # The published reply answers control id 102; send the request under that id first.
    session.translate(request.replace("|RGV^O15^RGV_O15|1|", "|RGV^O15^RGV_O15|102|"))
    event = one_event_of(session, "ihe_tf9_pcd03_rrg_o16_ar_reject.hl7")
    assert event.type == "program.auto_rejected"
    assert (event.subject.pump_id, event.subject.channel) == ("A0001", "1")
    assert wire_dict(event)["data"] == {
        "request_id": "102",
        "reason_code": "9010",
        "reason_text": "Unable to match medication to drug library",
    }


def one_event_of(session: Session, name: str) -> Any:
    translation = translate(name, session)
    assert translation.outcome == "events", translation.summary()
    (event,) = translation.events
    return event


def test_bbraun_occlusion_start_and_end_become_one_alarm_raised_then_cleared() -> None:
    raised = one_event("ihe_tf9_pcd04_oru_r40_bbraun_occlusion_start.hl7")
    cleared = one_event("ihe_tf9_pcd04_oru_r40_bbraun_occlusion_end.hl7")
    assert (raised.type, cleared.type) == ("alarm.raised", "alarm.cleared")
    assert raised.subject.alarm_id == cleared.subject.alarm_id == "E0001_27"  # OBR-29
    assert raised.subject.pump_id == cleared.subject.pump_id == "0012210000000000"
    assert raised.subject.channel is None  # the alert is at MDS level (1.0.0.0.x)
    assert wire_dict(raised)["data"] == {
        "code": "MDC_EVT_FLUID_LINE_OCCL", "priority": "info", "text": "Occlusion",
        "kind": "technical",
    }
    assert wire_dict(raised)["occurred_at"] == "2012-01-09T17:54:17-06:00"
    assert wire_dict(cleared)["occurred_at"] == "2012-01-09T17:54:26-06:00"


def test_the_ipec_sample_and_the_alarm_sample_name_the_same_pump() -> None:
    started = translate("ihe_tf9_ipec_oru_r42_delivery_start.hl7").events[0]
    raised = one_event("ihe_tf9_pcd04_oru_r40_bbraun_occlusion_start.hl7")
    assert started.subject.pump_id == raised.subject.pump_id


def test_every_sample_quantity_is_an_exact_decimal() -> None:
    for name in PUBLIC:
        for event in translate(name).events:
            for value in _quantities(wire_dict(event)["data"]):
                assert isinstance(value, str)
                Decimal(value)


def _quantities(node: Any) -> list[Any]:
    if isinstance(node, dict):
        if set(node) == {"value", "unit"}:
            return [node["value"]]
        return [v for child in node.values() for v in _quantities(child)]
    return []
