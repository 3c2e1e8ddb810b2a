"""Responses in time: R22 unanswered alarm, R23 stop after alarm, R24 paused or KVO too long."""

from __future__ import annotations

from tests.unit.test_rules_support import NOREPI, NOREPI_CONC, Story, heparin_running, q

MINUTE = 60 * 1_000_000


def _alarm(answer_at: float | None, *, priority: str = "high", until: float = 40,
           code: str = "MDC_EVT_FLUID_LINE_OCCL", answer_received: float | None = None) -> Story:
    story = heparin_running(Story())
    story.alarm("alarm.raised", 20, code=code, priority=priority)
    if answer_at is not None:
        story.alarm("alarm.acknowledged", answer_at,
                    received=answer_received if answer_received is not None else True)
    story.clock_until(until)
    return story


# -- R22 ----------------------------------------------------------------------------------
def test_a_high_priority_alarm_unanswered_for_two_minutes_is_r22() -> None:
    (finding,) = _alarm(None, code="MDC_EVT_BATT_LO").rule("R22")
    assert finding["severity"] == "S2"
    assert finding["opened_at"] - finding["triggered_at"] == 2 * MINUTE
    assert finding["alarm_id"] == "ALM-1" and finding["order_id"] == "O1"


def test_an_alarm_acknowledged_within_the_window_is_not_r22() -> None:
    assert _alarm(21.5).rule("R22") == []


def test_an_acknowledgement_after_the_window_resolves_r22() -> None:
    story = _alarm(None, until=24)
    ack = story.alarm("alarm.acknowledged", 26)  # after the deadline (22), before it fired
    story.clock_until(40)
    (finding,) = story.rule("R22")
    assert finding["status"] == "resolved"
    assert finding["resolving_event_id"] == ack["event_id"]


def test_a_medium_priority_alarm_has_ten_minutes() -> None:
    assert _alarm(28, priority="medium").rule("R22") == []
    assert len(_alarm(None, priority="medium").rule("R22")) == 1


def test_an_acknowledgement_that_arrives_late_but_happened_in_time_is_absorbed() -> None:
    # Acknowledged at 21 (in time); the message arrives at 24, after the 2-min deadline
    # but within the late-data allowance, so no finding.
    assert _alarm(21, answer_received=24).rule("R22") == []


def test_an_unanswered_occlusion_on_heparin_escalates_to_s1_at_twice_the_window() -> None:
    (finding,) = _alarm(None).rule("R22")
    assert finding["severity"] == "S1"
    assert finding["evidence"]["escalated_at"] is not None


def test_an_occlusion_answered_before_twice_the_window_stays_s2() -> None:
    story = _alarm(None, until=24)
    story.alarm("alarm.acknowledged", 23)
    story.clock_until(40)
    (finding,) = story.rule("R22")
    assert finding["severity"] == "S2" and finding["status"] == "resolved"


# -- R23 ----------------------------------------------------------------------------------
def _norepi_paused_by_alarm(resume_at: float | None, until: float = 60) -> Story:
    story = Story()
    story.order(0, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                dosing_weight=None)
    story.associate(1)
    story.confirm(2, mode="manual", medication=NOREPI, concentration=NOREPI_CONC,
                  rate=q("37.5", "mL/h"), dose=q(10, "ug/min"), dosing_weight=None)
    story.start(3, "37.5")
    story.delivery("infusion.paused", 10, reason="alarm")
    if resume_at is not None:
        story.delivery("infusion.resumed", resume_at)
    story.clock_until(until)
    return story


def test_a_vasoactive_drip_stopped_by_an_alarm_for_five_minutes_is_s1_r23() -> None:
    (finding,) = _norepi_paused_by_alarm(None).rule("R23")
    assert finding["severity"] == "S1"


def test_resuming_within_five_minutes_is_not_r23() -> None:
    assert _norepi_paused_by_alarm(13).rule("R23") == []


def test_resuming_after_the_window_resolves_r23() -> None:
    story = _norepi_paused_by_alarm(None, until=20)
    story.delivery("infusion.resumed", 25)
    assert story.rule("R23")[0]["status"] == "resolved"


def test_an_alarm_stop_on_heparin_has_thirty_minutes() -> None:
    story = heparin_running(Story())
    story.delivery("infusion.paused", 20, reason="alarm")
    story.clock_until(45)
    assert story.rule("R23") == []


# -- R24 ----------------------------------------------------------------------------------
def _paused(reason: str, resume_at: float | None, until: float = 80) -> Story:
    story = heparin_running(Story())
    story.delivery("infusion.paused", 20, reason=reason)
    if resume_at is not None:
        story.delivery("infusion.resumed", resume_at)
    story.clock_until(until)
    return story


def test_a_clinician_pause_longer_than_thirty_minutes_is_r24() -> None:
    (finding,) = _paused("clinician", None).rule("R24")
    assert finding["severity"] == "S3"


def test_a_twenty_minute_pause_is_not_r24() -> None:
    assert _paused("clinician", 40).rule("R24") == []


def test_resuming_after_the_window_resolves_r24() -> None:
    story = _paused("clinician", None, until=60)
    story.delivery("infusion.resumed", 65)
    assert story.rule("R24")[0]["status"] == "resolved"


def test_a_pause_for_a_piggyback_is_not_an_omission() -> None:
    assert _paused("switching_source", None).rule("R24") == []


def test_kvo_for_more_than_thirty_minutes_with_an_active_order_is_r24() -> None:
    story = heparin_running(Story())
    story.delivery("infusion.vtbi_completed", 20, next="kvo")
    story.delivery("infusion.kvo_started", 20, rate=q(1, "mL/h"))
    story.clock_until(60)
    (finding,) = story.rule("R24")
    assert finding["evidence"]["reason"] == "kvo"


def test_a_stale_report_from_before_the_pause_does_not_answer_r24() -> None:
    story = heparin_running(Story())
    story.delivery("infusion.paused", 20, reason="clinician")
    story.tick(19.5, received=21)  # sent before the pause, delivered after it
    story.clock_until(60)
    assert len(story.rule("R24")) == 1
