"""Infusion episodes: Given a channel's events, Then the episodes and their state.

Cases drawn from DOMAIN.md: a primary with a piggyback secondary, a rate titration, a pause
for occlusion then resume, KVO after VTBI complete, late association, a new bag of another
drug, a program cleared, and pump data seen before any program.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.infusions.episodes import ChannelFold
from tests.support.records import channel, record

HEPARIN = {"code": "235473", "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
           "name": "heparin 25,000 units in 250 mL D5W"}
VANCOMYCIN = {"code": "11124", "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
              "name": "vancomycin 1 g in 250 mL"}


def fold(*records: StoredRecord) -> dict[str, Any]:
    state: dict[str, Any] = {}
    folder = ChannelFold()
    for r in records:
        folder.apply(state, r)
    return state


def programmed(minute: float = 0, medication: dict | None = None, source: str = "primary",
               order: str | None = "ORD-1", **data: Any) -> StoredRecord:
    return record("program.confirmed", minute=minute, subject=channel(order=order),
                  data={"medication": medication or HEPARIN, "infusate_source": source,
                        "request_id": None, **data})


def started(minute: float, rate: str = "14.4", source: str = "primary") -> StoredRecord:
    return record("infusion.started", minute=minute, subject=channel(),
                  data={"rate": {"value": rate, "unit": "mL/h"}, "infusate_source": source})


def test_a_program_then_a_start_opens_one_infusing_episode_with_the_running_rate() -> None:
    state = fold(programmed(0), started(2))
    episode = state["episodes"]["primary"]
    assert episode["status"] == "infusing"
    assert episode["current_rate"] == {"value": "14.4", "unit": "mL/h"}
    assert episode["order_id"] == "ORD-1" and episode["order_link"] == "subject"
    assert episode["started_at"].startswith("2026-03-14T13:02")


def test_the_episode_id_is_derived_from_its_first_event_and_stable() -> None:
    first = programmed(0)
    assert fold(first, started(1))["episodes"]["primary"]["episode_id"] == \
        fold(first, started(5))["episodes"]["primary"]["episode_id"]


def test_a_titration_changes_the_current_rate_within_the_same_episode() -> None:
    state = fold(programmed(0), started(1), record(
        "infusion.rate_changed", minute=30, subject=channel(),
        data={"new_rate": {"value": "16", "unit": "mL/h"}, "previous_rate": None,
              "new_dose_rate": {"value": "20", "unit": "[iU]/kg/h"}}))
    episode = state["episodes"]["primary"]
    assert episode["current_rate"]["value"] == "16"
    assert episode["current_dose_rate"] == {"value": "20", "unit": "[iU]/kg/h"}
    assert episode["seq"] == 0  # seq is advanced by the projection's timeline, not the fold


def test_a_pause_for_occlusion_then_resume_keeps_the_episode_and_records_why() -> None:
    paused = record("infusion.paused", minute=10, subject=channel(),
                    data={"reason": "alarm", "volume_infused": {"value": "2.4", "unit": "mL"}})
    state = fold(programmed(0), started(1), paused)
    episode = state["episodes"]["primary"]
    assert (episode["status"], episode["paused_reason"]) == ("paused", "alarm")
    assert episode["volume_infused"]["value"] == "2.4"
    state = fold(programmed(0), started(1), paused,
                 record("infusion.resumed", minute=14, subject=channel(), data={}))
    assert state["episodes"]["primary"]["status"] == "infusing"
    assert state["episodes"]["primary"]["paused_reason"] is None


def test_vtbi_complete_with_kvo_continues_the_episode_at_the_kvo_rate() -> None:
    state = fold(programmed(0), started(1),
                 record("infusion.vtbi_completed", minute=600, subject=channel(),
                        data={"next": "kvo", "volume_infused": {"value": "250", "unit": "mL"}}),
                 record("infusion.kvo_started", minute=600.1, subject=channel(),
                        data={"rate": {"value": "1", "unit": "mL/h"}}))
    episode = state["episodes"]["primary"]
    assert episode["status"] == "kvo" and episode["ended_at"] is None
    assert episode["current_rate"] == {"value": "1", "unit": "mL/h"}


def test_vtbi_complete_without_kvo_ends_the_episode_as_completed() -> None:
    state = fold(programmed(0), started(1),
                 record("infusion.vtbi_completed", minute=600, subject=channel(),
                        data={"next": "stop", "volume_infused": {"value": "250", "unit": "mL"}}))
    episode = state["episodes"]["primary"]
    assert (episode["status"], episode["end_reason"]) == ("completed", "vtbi_completed")
    assert episode["ended_at"] is not None


def test_a_piggyback_secondary_is_its_own_episode_and_the_primary_resumes_after_it() -> None:
    state = fold(
        programmed(0), started(1),
        programmed(60, medication=VANCOMYCIN, source="secondary", order="ORD-2"),
        started(61, rate="250", source="secondary"),
        record("infusion.vtbi_completed", minute=121, subject=channel(order="ORD-2"),
               data={"infusate_source": "secondary", "next": "stop"}),
        record("infusion.status_reported", minute=122, subject=channel(),
               data={"state": "infusing", "rate": {"value": "14.4", "unit": "mL/h"}}),
    )
    primary, secondary = state["episodes"]["primary"], state["episodes"]["secondary"]
    assert primary["status"] == "infusing" and primary["ended_at"] is None
    assert secondary["status"] == "completed"
    assert secondary["medication"]["name"].startswith("vancomycin")
    assert secondary["order_id"] == "ORD-2"
    assert primary["episode_id"] != secondary["episode_id"]


def test_a_new_program_for_another_drug_ends_the_running_episode_as_replaced() -> None:
    state = fold(programmed(0), started(1), programmed(30, medication=VANCOMYCIN, order="ORD-2"))
    episode = state["episodes"]["primary"]
    assert episode["medication"]["name"].startswith("vancomycin")
    assert episode["status"] == "programmed"


def test_reprogramming_the_same_drug_and_order_stays_in_the_same_episode() -> None:
    program, start = programmed(0), started(1)
    first = fold(program, start)["episodes"]["primary"]["episode_id"]
    state = fold(program, start, programmed(5, rate={"value": "15", "unit": "mL/h"}))
    assert state["episodes"]["primary"]["episode_id"] == first
    assert state["episodes"]["primary"]["program"]["rate"]["value"] == "15"


def test_pump_data_before_the_association_gets_the_patient_when_it_arrives() -> None:
    anonymous = channel(patient=None, order=None)
    state = fold(
        record("program.confirmed", minute=0, subject=anonymous,
               data={"medication": HEPARIN, "request_id": None}),
        record("infusion.started", minute=1, subject=anonymous,
               data={"rate": {"value": "14.4", "unit": "mL/h"}}),
    )
    assert state["episodes"]["primary"]["patient_id"] is None
    folder = ChannelFold()
    touched = folder.apply(state, record("pump.associated", minute=20,
                                         subject=channel(patient="MRN-9", order=None),
                                         data={"method": "scan"}))
    episode = state["episodes"]["primary"]
    assert episode["patient_id"] == "MRN-9" and episode["patient_from"] == "association"
    assert touched == [episode]  # its row is rewritten: the association is attached


def test_an_auto_program_links_the_episode_to_the_order_named_in_the_request() -> None:
    no_order = channel(order=None)
    state = fold(
        record("program.auto_requested", minute=0, subject=channel(order="ORD-77"),
               data={"request_id": "RGV-9", "medication": HEPARIN}),
        record("program.confirmed", minute=1, subject=no_order,
               data={"medication": HEPARIN, "request_id": "RGV-9", "mode": "auto"}),
    )
    episode = state["episodes"]["primary"]
    assert (episode["order_id"], episode["order_link"]) == ("ORD-77", "auto_program")
    assert [p["type"] for p in episode["pending"]] == ["program.auto_requested"]


def test_clearing_the_program_ends_every_open_episode_of_the_channel() -> None:
    state = fold(programmed(0), started(1),
                 record("program.cleared", minute=90, subject=channel(), data={}))
    assert state["episodes"]["primary"]["end_reason"] == "cleared"


def test_telemetry_from_a_running_channel_with_no_program_seen_opens_an_episode() -> None:
    state = fold(record("infusion.status_reported", minute=0, subject=channel(),
                        data={"state": "infusing", "rate": {"value": "80", "unit": "mL/h"}}))
    episode = state["episodes"]["primary"]
    assert episode["status"] == "infusing" and episode["medication"] is None


def test_a_bolus_from_the_running_bag_is_counted_on_the_primary_episode() -> None:
    state = fold(programmed(0), started(1),
                 record("infusion.bolus_delivered", minute=5, subject=channel(),
                        data={"infusate_source": "bolus",
                              "dose": {"value": "2000", "unit": "[iU]"}}))
    assert set(state["episodes"]) == {"primary"}
    assert state["episodes"]["primary"]["boluses"] == 1


def test_limit_alerts_while_programming_are_counted_on_the_episode_they_preceded() -> None:
    state = fold(
        record("ders.limit_alert_raised", minute=0, subject=channel(),
               data={"alert_id": "D1", "limit_kind": "soft", "parameter": "bolus"}),
        record("ders.limit_alert_resolved", minute=0.1, subject=channel(),
               data={"alert_id": "D1", "outcome": "overridden"}),
        programmed(1),
    )
    episode = state["episodes"]["primary"]
    assert (episode["soft_alerts"], episode["overrides"]) == (1, 1)
