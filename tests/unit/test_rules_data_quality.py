"""R30 clock skew, communication gaps and late data; R31 pump-reported corrections; and the
event clock they protect."""

from __future__ import annotations

from tests.unit.test_rules_support import Story, heparin_running


def _skewed(story: Story) -> Story:
    """PUMP-1's clock falls 20 minutes behind from minute 30: its reports arrive late."""
    heparin_running(story)
    story.alarm("alarm.raised", 30, code="MDC_EVT_BATT_LO", priority="high", received=50)
    story.tick(31, received=51)
    return story


# -- R30 ----------------------------------------------------------------------------------
def test_a_pump_whose_events_arrive_twenty_minutes_late_gets_one_clock_skew_finding() -> None:
    story = _skewed(Story())
    story.clock_until(90)
    skew = [f for f in story.rule("R30") if f["evidence"]["kind"] == "clock_skew"]
    assert len(skew) == 1
    assert skew[0]["pump_id"] == "PUMP-1" and skew[0]["severity"] == "S4"


def test_a_skewed_pump_s_timing_rules_are_suppressed_and_counted() -> None:
    story = _skewed(Story())
    story.clock_until(90)
    assert story.rule("R22") == []
    (skew,) = story.rule("R30")
    assert skew["evidence"]["suppressed_deadlines"] >= 1


def test_a_clock_change_ends_the_skew_and_is_recorded_itself() -> None:
    story = _skewed(Story())
    story.add("pump.clock_changed", 60, {"pump_id": "PUMP-1"},
              {"previous_time": "2026-03-14T12:40:00+00:00",
               "new_time": "2026-03-14T13:00:00+00:00"})
    findings = story.rule("R30")
    kinds = {f["evidence"]["kind"]: f["status"] for f in findings}
    assert kinds == {"clock_skew": "resolved", "device_time_changed": "open"}


def test_two_minutes_of_latency_is_not_late_data() -> None:
    story = heparin_running(Story())
    story.tick(30, received=32)
    assert story.rule("R30") == []


def test_lateness_is_not_judged_without_received_at() -> None:
    story = heparin_running(Story())
    story.tick(30, received=None)
    assert story.rule("R30") == []


def test_a_communication_gap_is_one_finding_and_its_deadlines_wait_for_the_buffer() -> None:
    story = heparin_running(Story())
    story.add("pump.communication_changed", 20, {"pump_id": "PUMP-1"}, {"status": "lost"})
    story.clock_until(40)  # other pumps move the clock past the alarm's deadline
    story.add("pump.communication_changed", 40, {"pump_id": "PUMP-1"}, {"status": "restored"})
    story.alarm("alarm.raised", 25, code="MDC_EVT_FLUID_LINE_OCCL", priority="high",
                received=40.1)
    story.alarm("alarm.acknowledged", 26, received=40.2)
    story.clock_until(60)
    (gap,) = story.rule("R30")
    assert gap["evidence"]["kind"] == "communication_gap"
    assert gap["status"] == "resolved"
    assert gap["evidence"]["late_events"] == 2
    assert story.rule("R22") == []


def test_a_pump_clock_two_hours_ahead_does_not_fire_other_deadlines() -> None:
    story = heparin_running(Story())  # started at 10: R20 due at 70
    story.add("pump.library_activated", 200, {"pump_id": "PUMP-9"}, {"library_version": "L"},
              received=15)
    assert story.rule("R20") == []
    (ahead,) = story.rule("R30")
    assert ahead["evidence"]["kind"] == "clock_ahead"
    story.clock_until(80)
    assert len(story.rule("R20")) == 1


# -- R31 ----------------------------------------------------------------------------------
def test_a_pump_correction_of_an_earlier_result_is_r31() -> None:
    story = heparin_running(Story())
    wrong = story.tick(20, rate="15")
    story.add("infusion.status_reported", 21, story.channel_subject(),
              {"state": "infusing", "rate": {"value": "14.4", "unit": "mL/h"}},
              corrects_event_id=wrong["event_id"])
    (finding,) = story.rule("R31")
    assert finding["severity"] == "S2"
    assert wrong["event_id"] in finding["evidence_event_ids"]


def test_an_ordinary_event_is_not_a_correction() -> None:
    assert heparin_running(Story()).rule("R31") == []


def test_a_review_closes_a_correction_finding() -> None:
    story = heparin_running(Story())
    wrong = story.tick(20, rate="15")
    story.add("infusion.status_reported", 21, story.channel_subject(),
              {"state": "infusing", "rate": {"value": "14.4", "unit": "mL/h"}},
              corrects_event_id=wrong["event_id"])
    story.review(story.rule("R31")[0], 30, "false_positive")
    assert story.rule("R31")[0]["status"] == "false_positive"
