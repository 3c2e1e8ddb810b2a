"""Acknowledgements (original and enhanced mode) and the outbound RGV^O15 rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import hl7
import pytest

from consumers.hl7 import Session
from consumers.hl7.ack import Verdict, plan, render
from consumers.hl7.mllp import header
from consumers.hl7.outbound import render_rgv
from ledger.contract import wire_dict
from tests.support.events import event as contract_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
IPEC = (FIXTURES / "ihe_tf9_ipec_oru_r42_delivery_start.hl7").read_text()
ORIGINAL = IPEC.replace("|P|2.6|||AL|NE||", "|P|2.6|||||")


def msh_of(raw: str) -> hl7.Segment:
    view = header(raw.encode())
    assert view is not None
    msh = view.first("MSH")
    assert msh is not None
    return msh


@pytest.mark.parametrize(
    ("accept", "application", "status", "applied", "expected"),
    [
        ("", "", "accepted", False, ["AA"]),
        ("", "", "error", False, ["AE"]),
        ("", "", "rejected", True, ["AR"]),
        ("AL", "NE", "accepted", False, ["CA"]),
        ("AL", "NE", "error", False, ["CE"]),
        ("AL", "NE", "rejected", True, ["CR"]),
        ("NE", "NE", "accepted", True, []),
        ("ER", "NE", "accepted", True, []),
        ("ER", "NE", "rejected", True, ["CR"]),
        ("SU", "NE", "accepted", True, ["CA"]),
        ("AL", "AL", "accepted", True, ["CA", "AA"]),
        ("AL", "AL", "accepted", False, ["CA"]),  # Kafka sink: no application outcome yet
        ("AL", "ER", "accepted", True, ["CA"]),
        ("AL", "ER", "rejected", True, ["CR", "AR"]),
        ("", "AL", "accepted", False, ["CA"]),  # enhanced mode, MSH-15 empty: read as AL
    ],
)
def test_acknowledgements_follow_msh15_and_msh16(
    accept: str, application: str, status: str, applied: bool, expected: list[str]
) -> None:
    raw = IPEC.replace("|P|2.6|||AL|NE||", f"|P|2.6|||{accept}|{application}||")
    assert plan(msh_of(raw), Verdict(status, applied=applied)) == expected


def test_an_unreadable_message_is_answered_with_an_original_mode_reject() -> None:
    assert plan(None, Verdict("rejected", code="unparseable")) == ["AR"]
    ack = render(None, "AR", control_id="A9",
                 verdict=Verdict("rejected", "no readable MSH segment", code="unparseable"))
    message = hl7.parse(ack)
    assert str(message.segment("MSA")(1)) == "AR"
    assert "no readable MSH segment" in str(message.segment("ERR"))


def test_an_ack_swaps_sender_and_receiver_and_names_the_acknowledged_message() -> None:
    view = header(ORIGINAL.encode())
    now = datetime(2026, 3, 14, 8, 5, tzinfo=UTC)
    message = hl7.parse(render(view, "AA", control_id="ACK1", now=now))
    msh = message.segment("MSH")
    assert str(msh(3)) == "DOC_VENDOR"
    assert str(msh(5)) == "PAT_DEVICE_PUMPVENDOR^9999990000000000^EUI-64"
    assert str(msh(7)) == "20260314080500+0000"
    assert str(msh(9)) == "ACK^R42^ACK"
    assert str(msh(10)) == "ACK1"
    assert str(message.segment("MSA")(2)) == "6358051206735492253"


def test_an_error_ack_explains_the_reason_in_err() -> None:
    view = header(ORIGINAL.encode())
    verdict = Verdict("rejected", "unsupported_profile: X|Y", code="unsupported_profile")
    message = hl7.parse(render(view, "AR", control_id="A2", verdict=verdict))
    err = message.segment("ERR")
    assert str(err(3)).startswith("200^")
    assert message.unescape(str(err(8))) == "unsupported_profile: X|Y"  # escaped, not split


def test_a_program_request_renders_as_an_rgv_that_translates_back_to_the_same_request() -> None:
    original = Session().translate((FIXTURES / "ihe_tf9_pcd03_rgv_o15_ex1_dopamine_dose.hl7")
                                   .read_bytes())[0].events[0]
    rendered = render_rgv(original)
    (back,) = Session().translate(rendered)
    assert back.transaction == "PCD-03"
    assert not any("routed on MSH-9" in n for n in back.notes)  # it carries the PIV OID
    (again,) = back.events
    assert wire_dict(again)["data"] == wire_dict(original)["data"]
    assert again.subject == original.subject
    assert again.occurred_at == original.occurred_at


def test_a_rate_program_with_a_lettered_channel_renders_the_channel_in_ei1() -> None:
    request = contract_event(
        "program.auto_requested",
        subject={"pump_id": "PUMP-7", "channel": "B", "order_id": "O-1"},
        data={"rate": {"value": "13.30", "unit": "mL/h"}, "dose": None},
    )
    rendered = render_rgv(request, sent_at=datetime(2026, 1, 1, tzinfo=UTC))
    message = hl7.parse(rendered)
    assert "13.30" in str(message.segment("RXG")(15))
    assert str(message.segment("RXG")(16)).startswith("265266^MDC_DIM_MILLI_L_PER_HR^MDC")
    assert str(message.segment("OBX")(18)) == "B^^PUMP-7"


def test_only_program_requests_render_as_rgv() -> None:
    with pytest.raises(ValueError, match=r"only program\.auto_requested"):
        render_rgv(contract_event("infusion.started"))


def test_a_request_with_both_dose_and_rate_keeps_both_through_an_rgv_round_trip() -> None:
    request = contract_event("program.auto_requested")  # heparin 18 [iU]/kg/h at 14.4 mL/h
    rendered = render_rgv(request)
    (back,) = Session().translate(rendered)
    (again,) = back.events
    assert wire_dict(again)["data"] == wire_dict(request)["data"]
    # A lettered channel travels in EI-1 of OBX-18, but inbound PCD-03 reads a channel only
    # from OBX-4 (EI-1 is vendor text, "pump id optionally including channel"): default 1.
    assert "A^^PUMP-0042" in rendered
    assert (again.subject.pump_id, again.subject.channel) == ("PUMP-0042", "1")
