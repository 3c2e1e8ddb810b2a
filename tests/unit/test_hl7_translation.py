"""Translation rules beyond the samples: routing, clocks, identities, trees and phases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from consumers.hl7 import Hl7Config, Session, Translation
from ledger.contract import wire_dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
PCD01 = (FIXTURES / "synthetic_pcd01_vol3_norepinephrine.hl7").read_text()
PCD10 = (FIXTURES / "synthetic_pcd10_delivery_start.hl7").read_text()
PCD04 = (FIXTURES / "synthetic_pcd04_occlusion_start.hl7").read_text()
IPEC = (FIXTURES / "ihe_tf9_ipec_oru_r42_delivery_start.hl7").read_text()
PCD10_OID = "1.3.6.1.4.1.19376.1.6.4.10"


def one(raw: str, config: Hl7Config | None = None) -> Translation:
    (translation,) = Session(config).translate(raw)
    return translation


def replace_obx(message: str, set_id: int, new: str) -> str:
    lines = message.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"OBX|{set_id}|"))
    lines[index] = new
    return "\n".join(lines)


def ipec_event(event: str, status: str, *extra: str) -> str:
    """The synthetic IPEC message with another event code and delivery status."""
    message = replace_obx(PCD10, 3, f"OBX|3|CWE|68487^MDC_ATTR_EVT_COND^MDC|1.0.0.2|0^{event}^MDC"
                                    "||||||R")
    message = replace_obx(message, 11, "OBX|11|CWE|158005^MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS"
                                       f"^MDC|1.1.2.1|^pump-delivery-status-{status}||||||R")
    return message + "\n" + "\n".join(extra)


# --- routing -----------------------------------------------------------------------------


def test_an_oid_not_in_the_allow_list_is_dead_lettered_as_unsupported_profile() -> None:
    translation = one(IPEC.replace(PCD10_OID, "1.2.3.4.5"))
    assert translation.dead_letter is not None
    assert translation.dead_letter.code == "unsupported_profile"
    assert "1.2.3.4.5" in translation.dead_letter.detail


def test_a_configured_oid_extends_the_allow_list() -> None:
    config = Hl7Config.from_settings(type("S", (), {"hl7_profile_oids": {"PCD-10": ["1.2.3.4.5"]}}))
    assert one(IPEC.replace(PCD10_OID, "1.2.3.4.5"), config).transaction == "PCD-10"


def test_a_device_status_profile_sharing_oru_r01_is_dead_lettered_not_read_as_pcd01() -> None:
    raw = PCD01.replace("1.3.6.1.4.1.19376.1.6.1.1.1", "1.3.6.1.4.1.19376.1.6.1.15.1")
    translation = one(raw)
    assert translation.dead_letter is not None
    assert translation.dead_letter.code == "unsupported_profile"
    assert "PCD-15" in translation.dead_letter.detail


def test_ipec_sent_as_oru_r01_with_the_ipec_oid_is_read_as_pcd10() -> None:
    translation = one(IPEC.replace("ORU^R42^ORU_R01", "ORU^R01^ORU_R01"))
    assert translation.transaction == "PCD-10"
    assert translation.outcome == "events"


def test_a_profile_oid_contradicting_the_message_type_is_refused() -> None:
    translation = one(IPEC.replace("ORU^R42^ORU_R01", "ORU^R40^ORU_R40"))
    assert translation.dead_letter is not None
    assert translation.dead_letter.code == "profile_mismatch"


def test_alert_dissemination_status_is_an_unsupported_profile() -> None:
    raw = "MSH|^~\\&|AM|H|AR|H|20250301101203-0500||ORA^R41^ORA_R41|9|P|2.6\nMSA|AA|1\n"
    translation = one(raw)
    assert translation.dead_letter is not None and "PCD-05" in translation.dead_letter.detail


def test_messages_without_an_oid_can_be_required_to_have_one() -> None:
    rgv = (FIXTURES / "ihe_tf9_pcd03_rgv_o15_ex1_dopamine_dose.hl7").read_text()
    assert one(rgv).outcome == "events"
    strict = one(rgv, Hl7Config(require_profile_oid=True))
    assert strict.dead_letter is not None and strict.dead_letter.code == "unsupported_profile"


def test_a_non_pcd_message_type_is_dead_lettered() -> None:
    translation = one("MSH|^~\\&|ADT|H|L|H|20250301101203-0500||ADT^A01|7|P|2.6\nPID|||1\n")
    assert translation.dead_letter is not None
    assert "ADT^A01" in translation.dead_letter.detail


# --- clocks ------------------------------------------------------------------------------


def test_a_timestamp_without_offset_takes_msh7s_offset_and_says_so() -> None:
    translation = one(IPEC.replace("|20151015132106-0500", "|20151015132106"))
    assert wire_dict(translation.events[0])["occurred_at"] == "2015-10-15T13:21:06-05:00"
    assert any("MSH-7's offset" in n for n in translation.notes)


def test_a_configured_facility_zone_wins_and_applies_daylight_saving() -> None:
    raw = IPEC.replace("|20151015132106-0500", "|20151215132106")  # December: CST, -06:00
    translation = one(raw, Hl7Config(local_timezone=ZoneInfo("America/Chicago")))
    assert wire_dict(translation.events[0])["occurred_at"] == "2015-12-15T13:21:06-06:00"


def test_a_message_with_no_offset_anywhere_is_dead_lettered_never_guessed() -> None:
    raw = IPEC.replace("132107-0500", "132107").replace("132106-0500", "132106")
    translation = one(raw)
    assert translation.dead_letter is not None
    assert translation.dead_letter.code == "naive_timestamp"


def test_an_impossible_timestamp_falls_back_to_the_next_time_and_is_recorded() -> None:
    translation = one(IPEC.replace("|20151015132106-0500", "|20151345132106-0500"))
    assert wire_dict(translation.events[0])["occurred_at"] == "2015-10-15T13:21:07-05:00"
    assert any("OBR-7" in str(d) for d in translation.dropped)


def test_received_at_is_stamped_when_given() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    (translation,) = Session().translate(IPEC, received_at=now)
    assert all(e.received_at == now for e in translation.events)


# --- identities --------------------------------------------------------------------------


def test_the_same_message_twice_gets_the_same_event_ids() -> None:
    first, second = one(IPEC), one(IPEC)
    assert [e.event_id for e in first.events] == [e.event_id for e in second.events]
    assert first.origin().ref == second.origin().ref
    assert first.origin().ref.startswith("6358051206735492253|sha256:")


def test_an_alarm_refresh_under_a_new_msh10_dedupes_to_the_same_event() -> None:
    first = one(PCD04)
    resent = PCD04.replace("|GW-70011|", "|GW-70099|").replace("20250301101203", "20250301101503")
    refresh = one(resent)
    assert first.events[0].event_id == refresh.events[0].event_id


def test_a_buffered_ipec_event_resent_under_a_new_msh10_and_msh7_keeps_its_ids() -> None:
    resent = IPEC.replace("|6358051206735492253|", "|999|").replace(
        "20151015132107", "20151015140000")
    assert [e.event_id for e in one(resent).events] == [e.event_id for e in one(IPEC).events]


def test_a_program_request_is_identified_by_its_message() -> None:
    rgv = (FIXTURES / "ihe_tf9_pcd03_rgv_o15_ex1_dopamine_dose.hl7").read_text()
    again = rgv.replace("|RGV^O15^RGV_O15|1|", "|RGV^O15^RGV_O15|7|")
    assert one(rgv).events[0].event_id != one(again).events[0].event_id


def test_retracting_result_statuses_are_never_read_as_new_values() -> None:
    raw = PCD01.replace("157872^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.1.2|245.9|263762^MDC_DIM_MILLI_L"
                        "^MDC|||||F", "157872^MDC_VOL_FLUID_TBI_REMAIN^MDC|1.1.1.2|245.9|263762^"
                        "MDC_DIM_MILLI_L^MDC|||||W")
    translation = one(raw)
    assert translation.events[0].data.vtbi_remaining is None
    assert any("posted as wrong" in str(d) for d in translation.dropped)


# --- PCD-01 ------------------------------------------------------------------------------


def test_a_vol3_tree_pcd01_snapshot_becomes_status_reported_for_its_channel() -> None:
    (event,) = one(PCD01).events
    assert event.type == "infusion.status_reported"
    assert (event.subject.pump_id, event.subject.channel) == ("ACDE48FFFE000017", "1")
    assert wire_dict(event)["data"] == {
        "state": "infusing", "rate": {"value": "24.8", "unit": "mL/h"},
        "volume_infused": {"value": "4.1", "unit": "mL"},
        "vtbi_remaining": {"value": "245.9", "unit": "mL"}, "infusate_source": "primary",
    }


def test_an_infusion_pump_model_tree_pcd01_snapshot_is_read_too() -> None:
    raw = IPEC.replace("ORU^R42^ORU_R01", "ORU^R01^ORU_R01").replace(
        PCD10_OID, "1.3.6.1.4.1.19376.1.6.1.1.1")
    (event,) = one(raw).events
    assert event.type == "infusion.status_reported"
    assert wire_dict(event)["data"]["state"] == "infusing"
    assert wire_dict(event)["data"]["time_remaining"] == {"value": "974", "unit": "min"}
    assert wire_dict(event)["data"]["rate"] == {"value": "15.4", "unit": "mL/h"}


def test_a_flattened_pump_report_is_refused_because_channels_cannot_be_told_apart() -> None:
    lines = [line for line in PCD01.splitlines() if "|1.1." not in line]
    lines.append("OBX|9|NM|157784^MDC_FLOW_FLUID_PUMP^MDC|1.0.0.1|24.8|265266^MDC_DIM_MILLI_L_"
                 "PER_HR^MDC|||||F")
    translation = one("\n".join(lines))
    assert translation.dead_letter is not None and "flattened" in translation.dead_letter.detail


def test_a_monitor_pcd01_is_dead_lettered_as_not_a_pump() -> None:
    raw = PCD01.replace("69985^MDC_DEV_PUMP_INFUS_MDS", "69641^MDC_DEV_ANALY_SAT_O2_MDS")
    translation = one(raw)
    assert translation.dead_letter is not None and "not a pump" in translation.dead_letter.detail


def test_successive_pcd01_snapshots_derive_transitions_when_enabled() -> None:
    session = Session(Hl7Config(derive_pcd01_transitions=True))
    paused = PCD01.replace("^pump-status-infusing", "^pump-status-paused").replace(
        "20250301090000", "20250301090500")
    faster = PCD01.replace("|24.8|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||F||||||AMEAS",
                           "|30.0|265266^MDC_DIM_MILLI_L_PER_HR^MDC|||||F||||||AMEAS").replace(
        "20250301090000", "20250301091000").replace("GW-50001", "GW-50003")
    kinds = [
        [e.type for e in session.translate(raw)[0].events] for raw in (PCD01, paused, faster)
    ]
    assert kinds == [
        ["infusion.status_reported"],
        ["infusion.status_reported", "infusion.paused"],
        ["infusion.status_reported", "infusion.resumed"],
    ]
    faster2 = faster.replace("|30.0|", "|35.0|").replace("20250301091000", "20250301091500")
    last = session.translate(faster2)[0].events
    assert [e.type for e in last] == ["infusion.status_reported", "infusion.rate_changed"]
    assert format(last[1].data.previous_rate.value, "f") == "30.0"


def test_without_derivation_snapshots_only_report_status() -> None:
    session = Session()
    paused = PCD01.replace("^pump-status-infusing", "^pump-status-paused")
    assert [e.type for e in session.translate(paused)[0].events] == ["infusion.status_reported"]


# --- PCD-10 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "status", "extra", "expected"),
    [
        ("MDC_EVT_PUMP_DELIV_START", "kvo", (), ["infusion.kvo_started"]),
        ("MDC_EVT_PUMP_DELIV_STOP", "not-delivering",
         ("OBX|23|CWE|0^MDC_DEV_PUMP_NOT_DELIVERING_REASON^MDC|1.1.2.13|^pump-alarming||||||R",),
         ["infusion.paused"]),
        ("MDC_EVT_PUMP_DELIV_COMP", "transitioning", (), ["infusion.vtbi_completed"]),
        ("MDC_EVT_PUMP_PROG_CLEARED", "not-delivering", (), ["program.cleared"]),
        ("MDC_EVT_PUMP_AUTO_PROG_CLEARED", "not-delivering", (), ["program.cleared"]),
        ("MDC_EVT_PATIENT_CHANGE", "delivering", (), ["pump.associated"]),
    ],
)
def test_ipec_events_map_to_their_ledger_events(
    event: str, status: str, extra: tuple[str, ...], expected: list[str]
) -> None:
    translation = one(ipec_event(event, status, *extra))
    assert [e.type for e in translation.events] == expected, translation.summary()


def test_an_ipec_pause_carries_its_reason_and_volume() -> None:
    raw = ipec_event("MDC_EVT_PUMP_DELIV_STOP", "not-delivering",
                     "OBX|23|CWE|0^MDC_DEV_PUMP_NOT_DELIVERING_REASON^MDC|1.1.2.13|"
                     "^pump-stopped-by-clinician||||||R")
    data = wire_dict(one(raw).events[0])["data"]
    assert data["reason"] == "clinician"
    assert data["volume_infused"] == {"value": "4.1", "unit": "mL"}


def test_vtbi_completion_followed_by_kvo_says_so() -> None:
    raw = ipec_event("MDC_EVT_PUMP_DELIV_COMP", "transitioning")
    assert one(raw).events[0].data.next == "kvo"


def test_a_transitioning_stop_is_understood_as_half_a_rate_change_without_events() -> None:
    translation = one(ipec_event("MDC_EVT_PUMP_DELIV_STOP", "transitioning"))
    assert translation.outcome == "no_event"
    assert "rate change" in (translation.no_event_reason or "")


def test_ipec_events_without_a_contract_event_are_dead_lettered_with_the_reason() -> None:
    translation = one(ipec_event("MDC_EVT_PUMP_VOL_COUNTERS_CLEARED", "not-delivering"))
    assert translation.dead_letter is not None
    assert "volume counters cleared" in translation.dead_letter.detail


def test_a_start_after_volume_was_delivered_does_not_confirm_a_new_program() -> None:
    translation = one(PCD10)  # cumulative volume 4.1 mL: a restart or titration
    assert [e.type for e in translation.events] == ["infusion.started"]


# --- PCD-04 ------------------------------------------------------------------------------


def alarm(phase: str, state: str = "active", inactivation: str = "enabled") -> str:
    return (PCD04.replace("|start||", f"|{phase}||").replace("|active||", f"|{state}||")
            .replace("|enabled||", f"|{inactivation}||"))


@pytest.mark.parametrize(
    ("phase", "state", "inactivation", "expected"),
    [
        ("start", "active", "enabled", ["alarm.raised"]),
        ("present", "active", "enabled", ["alarm.raised"]),
        ("update", "active", "enabled", ["alarm.updated"]),
        ("continue", "active", "audio-paused", ["alarm.silenced", "alarm.updated"]),
        ("update", "active", "alert-acknowledged", ["alarm.acknowledged", "alarm.updated"]),
        ("acknowledged", "active", "enabled", ["alarm.acknowledged"]),
        ("inactivate", "active", "audio-off", ["alarm.silenced"]),
        ("end", "inactive", "enabled", ["alarm.cleared"]),
        ("reset", "inactive", "enabled", ["alarm.cleared"]),
    ],
)
def test_alarm_phases_map_to_alarm_events(
    phase: str, state: str, inactivation: str, expected: list[str]
) -> None:
    translation = one(alarm(phase, state, inactivation))
    assert [e.type for e in translation.events] == expected, translation.summary()


def test_separate_priority_and_type_facets_win_over_the_deprecated_obx8_form() -> None:
    raw = PCD04.replace("Occlusion downstream||||||F", "Occlusion downstream||L~PL~SA||||F")
    data = wire_dict(one(raw).events[0])["data"]
    assert (data["priority"], data["kind"]) == ("high", "technical")


def test_an_unknown_alarm_phase_is_dead_lettered() -> None:
    translation = one(alarm("sideways"))
    assert translation.dead_letter is not None and "sideways" in translation.dead_letter.detail
