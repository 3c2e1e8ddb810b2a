"""Charting: R03 charted vs pump, R20/R21 start or rate change not charted within N minutes."""

from __future__ import annotations

from tests.unit.test_rules_support import Story, heparin_running, q


# -- R20 / R21 ----------------------------------------------------------------------------
def _started(chart_at: float | None, until: float = 90) -> Story:
    story = heparin_running(Story())  # started at minute 10
    if chart_at is not None:
        story.chart(chart_at, observed=10)
    story.clock_until(until)
    return story


def test_a_start_not_charted_within_an_hour_is_r20_at_its_deadline() -> None:
    (finding,) = _started(None).rule("R20")
    assert finding["severity"] == "S3"
    assert finding["opened_at"] - finding["triggered_at"] == 60 * 60 * 1_000_000


def test_a_start_charted_after_thirty_minutes_is_not_r20() -> None:
    assert _started(40).rule("R20") == []


def test_a_chart_after_the_deadline_resolves_r20() -> None:
    story = _started(None, until=80)
    chart = story.chart(85, observed=10)
    (finding,) = story.rule("R20")
    assert finding["status"] == "resolved"
    assert finding["resolving_event_id"] == chart["event_id"]


def test_a_chart_made_just_after_the_deadline_opens_and_resolves_r20_at_once() -> None:
    story = heparin_running(Story())
    story.chart(72, observed=10)  # made at 72 > 70, seen before the deadline fired (75)
    story.clock_until(90)
    (finding,) = story.rule("R20")
    assert finding["status"] == "resolved"


def test_a_chart_that_arrived_before_the_late_pump_start_still_answers_it() -> None:
    story = Story()
    story.order(0)
    story.associate(5)
    story.chart(20, observed=10)
    story.request(8)
    story.confirm(9)
    story.start(10, received=25)  # buffered by the gateway, arrives after the chart
    story.clock_until(90)
    assert story.rule("R20") == []


def test_a_chart_observed_before_the_start_does_not_answer_it() -> None:
    story = heparin_running(Story())
    story.chart(30, observed=5)
    story.clock_until(90)
    assert len(story.rule("R20")) == 1


def test_a_rate_change_not_charted_within_an_hour_is_r21() -> None:
    story = heparin_running(Story())
    story.chart(20, observed=10)
    story.delivery("infusion.rate_changed", 30, new_rate=q("16", "mL/h"))
    story.clock_until(100)
    (finding,) = story.rule("R21")
    assert finding["status"] == "open"


def test_a_rate_change_charted_in_time_is_not_r21() -> None:
    story = heparin_running(Story())
    story.chart(20, observed=10)
    story.delivery("infusion.rate_changed", 30, new_rate=q("16", "mL/h"))
    story.chart(50, observed=30, rate="16")
    story.clock_until(100)
    assert story.rule("R21") == []


def test_a_late_chart_of_the_rate_change_resolves_r21() -> None:
    story = heparin_running(Story())
    story.chart(20, observed=10)
    story.delivery("infusion.rate_changed", 30, new_rate=q("16", "mL/h"))
    story.clock_until(100)
    story.chart(110, observed=30, rate="16")
    assert story.rule("R21")[0]["status"] == "resolved"


def test_backfilled_starts_are_not_judged_for_missing_charts() -> None:
    story = Story()
    story.order(0, received=None)
    story.associate(5, received=None)
    story.confirm(9, received=None)
    story.start(10, received=None)
    story.clock_until(90)
    assert story.rule("R20") == []


# -- R03 ----------------------------------------------------------------------------------
def test_a_rate_charted_twenty_percent_off_the_pump_is_r03() -> None:
    story = heparin_running(Story())
    story.chart(20, observed=10, rate="17.3")
    (finding,) = story.rule("R03")
    assert finding["severity"] == "S2"  # heparin is high-alert
    (mismatch,) = finding["evidence"]["mismatches"]
    assert mismatch["field"] == "rate" and mismatch["pump"] == [q("14.4", "mL/h")]


def test_a_rate_charted_within_tolerance_is_not_r03() -> None:
    story = heparin_running(Story())
    story.chart(20, observed=10, rate="14.5")
    assert story.rule("R03") == []


def test_a_chart_at_a_rate_change_may_describe_the_segment_before_or_after() -> None:
    story = heparin_running(Story())
    story.delivery("infusion.rate_changed", 30, new_rate=q("16", "mL/h"))
    story.chart(40, observed=32, rate="14.4")  # within the ±5 min alignment
    assert story.rule("R03") == []


def test_retracting_the_wrong_chart_resolves_r03() -> None:
    story = heparin_running(Story())
    chart = story.chart(20, observed=10, rate="17.3")
    story.add("documentation.retracted", 25, {"order_id": "O1", "patient_id": "P1"},
              {"reason": "wrong value"}, corrects_event_id=chart["event_id"])
    (finding,) = story.rule("R03")
    assert finding["status"] == "resolved"


def test_an_edit_moving_a_device_value_beyond_tolerance_is_evidence_even_after_the_chart() -> None:
    story = heparin_running(Story())
    story.chart(20, observed=10, rate="14.4", volume_infused=q(80, "mL"))
    edit = story.add("documentation.edited", 20, {"order_id": "O1", "patient_id": "P1",
                                                  "pump_id": "PUMP-1", "channel": "A"},
                     {"field": "volume_infused", "device_value": q(102, "mL"),
                      "charted_value": q(80, "mL")})
    (finding,) = story.rule("R03")
    assert edit["event_id"] in finding["evidence_event_ids"]


def test_rounding_a_volume_to_the_millilitre_is_not_r03() -> None:
    story = heparin_running(Story())
    story.add("documentation.edited", 20, {"order_id": "O1", "patient_id": "P1"},
              {"field": "volume_infused", "device_value": q("102.3", "mL"),
               "charted_value": q(102, "mL")})
    story.chart(20, observed=10, rate="14.4")
    assert story.rule("R03") == []
