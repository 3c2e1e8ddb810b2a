"""Each quirk of the public samples, and the messiness of real captures, has a test."""

from __future__ import annotations

from pathlib import Path

from consumers.hl7 import Session, Translation
from consumers.hl7.ack import render
from consumers.hl7.cleanup import split_messages
from consumers.hl7.mllp import header
from ledger.contract import wire_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
IPEC = "ihe_tf9_ipec_oru_r42_delivery_start.hl7"
RGV1 = "ihe_tf9_pcd03_rgv_o15_ex1_dopamine_dose.hl7"
ALARM_START = "ihe_tf9_pcd04_oru_r40_bbraun_occlusion_start.hl7"
ALARM_END = "ihe_tf9_pcd04_oru_r40_bbraun_occlusion_end.hl7"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def one(raw: str | bytes) -> Translation:
    (translation,) = Session().translate(raw)
    return translation


# --- the quirks listed in shared/samples/README.md ---------------------------------------


def test_units_dual_coded_ucum_first_or_mdc_first_read_as_one_ucum_code() -> None:
    # RXG-16 is "3475^ug/kg/min^UCUM^265619^MDC_DIM_..." (UCUM triplet first, with the MDC
    # term number as its identifier); RXG-7 is MDC first.
    data = wire_dict(one(text(RGV1)).events[0])["data"]
    assert data["dose"]["unit"] == "ug/kg/min"
    assert data["vtbi"]["unit"] == "mL"


def test_rxg7_trailing_space_is_trimmed_and_noted() -> None:
    translation = one(text(RGV1))
    assert any("RXG-7" in n and "'UCUM '" in n for n in translation.notes)
    assert translation.events[0].data.vtbi.unit == "mL"


def test_rxr_without_rxr4_is_accepted_and_the_route_reported_as_not_carried() -> None:
    translation = one(text(RGV1))
    assert translation.outcome == "events"
    assert any("RXR" in str(d) and "route" in str(d) for d in translation.dropped)


def test_pump_id_in_obx18_with_an_empty_first_component_comes_from_ei3() -> None:
    assert one(text(RGV1)).events[0].subject.pump_id == "A0001"


def test_repeated_order_ids_are_kept_apart_as_two_requests() -> None:
    session = Session()
    first = session.translate(text(RGV1))[0].events[0]
    second = session.translate(text("ihe_tfwip_pcd03_rgv_o15_ex2_saline_rate_cp159.hl7"))[0]
    assert first.subject.order_id == second.events[0].subject.order_id == "12345"
    assert first.data.request_id != second.events[0].data.request_id
    assert first.event_id != second.events[0].event_id


def test_misspelled_language_code_system_does_not_matter() -> None:
    translation = one(text("ihe_tf9_pcd03_ack_o15_ex1_accept.hl7"))
    assert "ISO659" in text("ihe_tf9_pcd03_ack_o15_ex1_accept.hl7")
    assert translation.outcome == "no_event"


def test_an_ack_with_empty_msa2_is_understood_and_the_gap_noted() -> None:
    translation = one(text("ihe_tf9_pcd03_ack_o15_ex2_empty_msa2.hl7"))
    assert translation.outcome == "no_event"
    assert any("MSA-2" in n for n in translation.notes)


def test_msh7_with_a_space_before_the_offset_is_read_with_its_offset() -> None:
    session = Session()
    session.translate(text(RGV1).replace("|RGV^O15^RGV_O15|1|", "|RGV^O15^RGV_O15|102|"))
    (translation,) = session.translate(text("ihe_tf9_pcd03_rrg_o16_ar_reject.hl7"))
    assert wire_dict(translation.events[0])["occurred_at"] == "2008-01-01T12:34:56-06:00"
    assert any("spaces removed from timestamp" in n for n in translation.notes)


def test_err3_leading_space_does_not_reach_the_reason() -> None:
    raw = text("ihe_tf9_pcd03_rrg_o16_ar_reject.hl7").replace("|F|9010^Unable to match "
                                                              "medication to drug library", "|F|")
    session = Session()
    session.translate(text(RGV1).replace("|RGV^O15^RGV_O15|1|", "|RGV^O15^RGV_O15|102|"))
    event = session.translate(raw)[0].events[0]
    assert (event.data.reason_code, event.data.reason_text) == (
        "207", "Application internal error")


def test_spaces_inside_msh5_are_trimmed_in_the_acknowledgement() -> None:
    view = header((FIXTURES / ALARM_START).read_bytes())
    assert view is not None
    ack = render(view, "CA", control_id="A1")
    assert ack.startswith("MSH|^~\\&|AM_Philips_IEM^00095CFFFE741952^EUI-64|Philips|")
    assert any("MSH-5" in n for n in view.notes)


def test_an_obx_short_a_field_has_its_status_read_from_obx10() -> None:
    translation = one(text(ALARM_START))
    assert any("found in OBX-10" in n for n in translation.notes)
    assert not any("OBX|5" in str(d) for d in translation.dropped)


def test_alarm_start_and_end_route_to_pcd04_despite_different_profile_oids() -> None:
    assert "1.3.6.1.4.1.19376.1.6.4.4.1" in text(ALARM_START)
    assert "1.3.6.1.4.1.19376.1.6.1.4.1" in text(ALARM_END)
    assert one(text(ALARM_START)).transaction == one(text(ALARM_END)).transaction == "PCD-04"


def test_msh21_with_a_space_after_the_caret_still_routes_on_the_oid() -> None:
    translation = one(text(IPEC))
    assert translation.transaction == "PCD-10"
    assert not any("routed on MSH-9" in n for n in translation.notes)


def test_obx3_code_0_is_keyed_on_the_reference_id() -> None:
    draft = one(text("ihe_tf9draft_ipec_oru_r42_delivery_start_pending_code0.hl7"))
    assert [e.type for e in draft.events] == ["infusion.started", "program.confirmed"]


# --- messy captures ----------------------------------------------------------------------


def test_crlf_cr_and_lf_segment_separators_give_the_same_message() -> None:
    lf = text(IPEC)
    ids = {
        one(variant).events[0].event_id
        for variant in (lf, lf.replace("\n", "\r"), lf.replace("\n", "\r\n"))
    }
    assert len(ids) == 1


def test_wrapped_lines_are_rejoined_without_adding_characters() -> None:
    lines = text(IPEC).splitlines()
    index = next(i for i, line in enumerate(lines) if "MDC_RATE_DOSE" in line)
    line = lines[index]
    cut = line.index("5.00") + 2
    lines[index:index + 1] = [line[:cut], line[cut:]]  # "...|5." / "00|2656..."
    translation = one("\n".join(lines))
    assert any("re-joined" in n for n in translation.notes)
    assert format(translation.events[0].data.dose_rate.value, "f") == "5.00"


def test_fused_segments_are_split_and_noted() -> None:
    fused = text(IPEC).replace("\nOBX|15|", " OBX|15|").replace("\nOBX|16|", "OBX|16|")
    translation = one(fused)
    assert sum("fused" in n for n in translation.notes) == 2
    assert format(translation.events[0].data.dose_rate.value, "f") == "5.00"
    assert format(translation.events[0].data.vtbi.value, "f") == "250.0"


def test_stray_spaces_in_fields_are_trimmed() -> None:
    raw = text(IPEC).replace("|15.4|265266", "| 15.4 |265266").replace("|1.1.2.4|", "| 1.1.2.4|")
    started = one(raw).events[0]
    assert format(started.data.rate.value, "f") == "15.4"


def test_missing_fields_are_read_as_absent_not_as_errors() -> None:
    raw = text(IPEC).replace("|20151015132106-0500", "")  # OBR-7 gone: MSH-7 used
    translation = one(raw)
    assert translation.outcome == "events"
    assert wire_dict(translation.events[0])["occurred_at"] == "2015-10-15T13:21:07-05:00"


def test_private_mdcx_codes_and_unknown_numbers_are_recorded_as_dropped() -> None:
    extra = ("OBX|24|NM|0^MDCX_VOL_STEP_DELIV^MDC|1.1.2.14|3|263762^MDC_DIM_MILLI_L^MDC|||||R\n"
             "OBX|25|NM|999999^^MDC|1.1.2.15|3|263762^MDC_DIM_MILLI_L^MDC|||||R\n")
    translation = one(text(IPEC) + extra)
    dropped = [str(d) for d in translation.dropped]
    assert any("MDCX_VOL_STEP_DELIV" in d for d in dropped)
    assert any("unknown MDC code 999999" in d for d in dropped)
    assert translation.outcome == "events"


def test_unknown_z_segments_are_dropped_with_a_reason() -> None:
    translation = one(text(IPEC) + "ZPM|1|vendor stuff\n")
    assert any("ZPM" in str(d) and "Z-segment" in str(d) for d in translation.dropped)
    assert translation.outcome == "events"


def test_a_file_with_mllp_framing_and_batch_envelope_and_junk_is_recovered() -> None:
    raw = (b"garbage before\nBHS|^~\\&|X\n\x0b" + (FIXTURES / IPEC).read_bytes() + b"\x1c\r"
           b"BTS|1\n")
    split = split_messages(raw)
    assert len(split.messages) == 1
    assert "MLLP framing bytes removed" in split.notes
    translation = one(raw)
    assert translation.outcome == "events"


def test_latin1_input_is_decoded_and_noted() -> None:
    raw = text(IPEC).replace("Crit Care", "Réa").encode("latin-1")
    (translation,) = Session().translate(raw)
    assert any("Latin-1" in n for n in translation.notes)
    assert translation.events[1].data.care_area == "Réa"


def test_escaped_separators_in_text_are_unescaped() -> None:
    raw = text(IPEC).replace("|Crit Care|", "|Crit\\T\\Care \\F\\ ICU|")
    assert one(raw).events[1].data.care_area == "Crit&Care | ICU"
