"""Drug-library safety events: R13 soft-limit overrides, R28 boluses without an order."""

from __future__ import annotations

from typing import Any

from tests.unit.test_rules_support import Story, q


def _alert(story: Story, minute: float, alert_id: str, outcome: str, seconds: str,
           programmed: str = "30", limit_kind: str = "soft") -> None:
    subject = story.channel_subject()
    story.add("ders.limit_alert_raised", minute, subject, {
        "alert_id": alert_id, "limit_kind": limit_kind, "parameter": "dose", "bound": "upper",
        "limit": q(25, "[iU]/kg/h"), "programmed": q(programmed, "[iU]/kg/h"),
        "care_area": "ICU"})
    story.add("ders.limit_alert_resolved", minute + 0.1, subject, {
        "alert_id": alert_id, "outcome": outcome, "seconds_to_resolve": seconds})


def _overridden(**alert: Any) -> Story:
    story = Story()
    story.located(0)
    story.order(1)
    story.associate(2)
    _alert(story, 3, "D1", "overridden", alert.pop("seconds", "9.5"), **alert)
    return story


# -- R13 ----------------------------------------------------------------------------------
def test_a_soft_limit_override_is_an_s3_finding_with_the_alert() -> None:
    (finding,) = _overridden().rule("R13")
    assert finding["severity"] == "S3"
    assert finding["evidence"]["alert"]["alert_id"] == "D1"
    assert finding["order_id"] == "O1" and finding["unit"] == "MICU"


def test_an_override_in_under_two_seconds_is_s2() -> None:
    (finding,) = _overridden(seconds="1.4").rule("R13")
    assert finding["severity"] == "S2"
    assert "overridden in 1.4 s" in finding["summary"]


def test_an_override_at_twice_the_soft_limit_is_s2() -> None:
    assert _overridden(programmed="50").rule("R13")[0]["severity"] == "S2"


def test_the_third_override_on_one_infusion_is_s2() -> None:
    story = _overridden()
    _alert(story, 4, "D2", "overridden", "8")
    _alert(story, 5, "D3", "overridden", "8")
    severities = [f["severity"] for f in story.rule("R13")]
    assert severities == ["S3", "S3", "S2"]


def test_a_reprogrammed_alert_is_not_an_override() -> None:
    story = Story()
    story.order(1)
    _alert(story, 3, "D1", "reprogrammed", "12")
    assert story.rule("R13") == []


def test_a_review_closes_an_override_finding() -> None:
    story = _overridden()
    (finding,) = story.rule("R13")
    story.review(finding, 30, "accepted_risk", "per protocol")
    (finding,) = story.rule("R13")
    assert finding["status"] == "accepted_risk"
    assert finding["review_note"] == "per protocol"


# -- R28 ----------------------------------------------------------------------------------
def _bolus(order_bolus: dict[str, Any] | None, *doses: str) -> Story:
    story = Story()
    story.order(0, bolus=order_bolus)
    story.associate(1)
    story.auto_start(5)
    for index, dose in enumerate(doses):
        story.delivery("infusion.bolus_delivered", 10 + index * 5, infusate_source="bolus",
                       dose=q(dose, "[iU]/kg"), volume=q("6.4", "mL"))
    return story


ALLOWED = {"dose": q(40, "[iU]/kg"), "max_per_hour": q(80, "[iU]/kg")}


def test_a_bolus_the_order_does_not_allow_is_r28_s1_for_heparin() -> None:
    (finding,) = _bolus(None, "40").rule("R28")
    assert finding["severity"] == "S1"
    assert finding["summary"] == "no bolus in the order"


def test_a_bolus_within_the_ordered_dose_is_not_r28() -> None:
    assert _bolus(ALLOWED, "40").rule("R28") == []


def test_a_bolus_above_the_ordered_dose_is_r28() -> None:
    (finding,) = _bolus(ALLOWED, "60").rule("R28")
    assert "above the ordered" in finding["summary"]


def test_boluses_beyond_the_hourly_maximum_are_r28() -> None:
    findings = _bolus(ALLOWED, "40", "40", "40").rule("R28")
    assert len(findings) == 1 and "within an hour" in findings[0]["summary"]


def test_a_review_closes_a_bolus_finding() -> None:
    story = _bolus(None, "40")
    (finding,) = story.rule("R28")
    story.review(finding, 40, "confirmed")
    assert story.rule("R28")[0]["status"] == "confirmed"
