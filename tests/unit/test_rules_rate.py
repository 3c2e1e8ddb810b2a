"""R01 (running rate vs the order) and R02 (dose rate vs the titration range): Given events,
Then findings."""

from __future__ import annotations

from tests.unit.test_rules_support import (
    NOREPI,
    NOREPI_CONC,
    SALINE,
    Story,
    heparin_running,
    q,
)


def test_a_tenfold_heparin_rate_is_an_s1_finding_with_the_values_compared() -> None:
    # 25,000 [iU] / 250 mL at 18 [iU]/kg/h for 80 kg is 14.4 mL/h; the pump runs 144.
    story = heparin_running(Story(), rate="144")
    (finding,) = story.rule("R01")
    assert finding["severity"] == "S1"
    assert finding["status"] == "open"
    assert finding["evidence"]["expected_ml_h"] == "14.4"
    assert finding["evidence"]["running_ml_h"] == "144"
    assert finding["evidence"]["ratio"] == "10"
    assert finding["evidence"]["mode"] == "ordered_dose"
    assert finding["order_id"] == "O1" and finding["pump_id"] == "PUMP-1"
    assert "144 mL/h vs ordered 14.4 mL/h" in finding["summary"]


def test_a_rate_within_five_percent_of_the_ordered_rate_does_not_fire() -> None:
    story = heparin_running(Story(), rate="15.1")  # tolerance max(5 % x 14.4, 0.1) = 0.72
    assert story.rule("R01") == []


def test_a_rate_just_outside_tolerance_on_a_plain_fluid_is_s2() -> None:
    story = Story()
    story.order(0, medication=SALINE, concentration=None, dose=None, dosing_weight=None,
                rate=q(100, "mL/h"), high_alert=False)
    story.associate(1)
    story.confirm(2, mode="manual", medication=SALINE, rate=q("106", "mL/h"), concentration=None,
                  dose=None, dosing_weight=None)
    story.start(3, "106")
    (finding,) = story.rule("R01")
    assert finding["severity"] == "S2"
    assert finding["evidence"]["mode"] == "ordered_rate"


def test_correcting_the_rate_resolves_the_finding_with_the_correcting_event() -> None:
    story = heparin_running(Story(), rate="144")
    fix = story.delivery("infusion.rate_changed", 14, new_rate=q("14.4", "mL/h"))
    (finding,) = story.rule("R01")
    assert finding["status"] == "resolved"
    assert finding["resolving_event_id"] == fix["event_id"]


def test_stopping_the_infusion_resolves_the_rate_finding() -> None:
    story = heparin_running(Story(), rate="144")
    story.delivery("infusion.stopped", 20)
    (finding,) = story.rule("R01")
    assert finding["status"] == "resolved"


def test_telemetry_showing_a_new_rate_is_compared_at_once() -> None:
    story = heparin_running(Story())
    story.tick(30, rate="30")
    (finding,) = story.rule("R01")
    assert finding["evidence"]["running_ml_h"] == "30"


def test_an_order_change_the_pump_has_not_followed_opens_r01_at_the_order_change() -> None:
    story = heparin_running(Story())
    modified = story.order_event("order.modified", 40, dose=q(24, "[iU]/kg/h"))  # 19.2 mL/h
    (finding,) = story.rule("R01")
    assert finding["trigger_event_id"] == modified["event_id"]
    assert finding["severity"] == "S1"  # heparin is high-alert
    story.delivery("infusion.rate_changed", 45, new_rate=q("19.2", "mL/h"))
    (finding,) = story.rule("R01")
    assert finding["status"] == "resolved"


def test_a_titratable_order_is_compared_with_the_flows_of_its_range() -> None:
    # norepinephrine 4 mg/250 mL: 2-30 ug/min is 7.5-112.5 mL/h.
    def story_at(rate: str) -> Story:
        story = Story()
        story.order(0, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                    dosing_weight=None, titration={"min": q(2, "ug/min"), "max": q(30, "ug/min"),
                                                   "step": q(1, "ug/min")})
        story.associate(1)
        story.confirm(2, mode="manual", medication=NOREPI, concentration=NOREPI_CONC,
                      rate=q(rate, "mL/h"), dose=None, dosing_weight=None)
        story.start(3, rate)
        return story

    assert story_at("90").rule("R01") == []  # 24 ug/min: inside the range, not the start dose
    (finding,) = story_at("150").rule("R01")
    assert finding["evidence"]["mode"] == "titration_range"
    assert finding["evidence"]["ordered_high_ml_h"] == "112.5"


def test_kvo_is_not_compared_with_the_ordered_rate() -> None:
    story = heparin_running(Story())
    story.delivery("infusion.vtbi_completed", 50, next="kvo")
    story.delivery("infusion.kvo_started", 50, rate=q(1, "mL/h"))
    story.tick(55, state="kvo", rate="1")
    assert story.rule("R01") == []


def test_the_end_of_the_order_resolves_r01() -> None:
    story = heparin_running(Story(), rate="144")
    story.order_event("order.discontinued", 30)
    (finding,) = story.rule("R01")
    assert finding["status"] == "resolved"


def _titrated(dose: str) -> Story:
    story = Story()
    story.order(0, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                dosing_weight=None, titration={"min": q(2, "ug/min"), "max": q(30, "ug/min"),
                                               "step": q(1, "ug/min")})
    story.associate(1)
    story.confirm(2, mode="manual", medication=NOREPI, concentration=NOREPI_CONC,
                  rate=q("37.5", "mL/h"), dose=q(10, "ug/min"), dosing_weight=None)
    story.start(3, "37.5", dose_rate=q(10, "ug/min"))
    story.delivery("infusion.rate_changed", 20, new_rate=q("131.25", "mL/h"),
                   new_dose_rate=q(dose, "ug/min"))
    return story


def test_a_dose_rate_above_the_titration_range_is_r02_and_s1_for_a_high_alert_drug() -> None:
    (finding,) = _titrated("35").rule("R02")
    assert finding["severity"] == "S1"
    assert finding["evidence"]["titration_max"] == q(30, "ug/min")


def test_a_dose_rate_at_the_top_of_the_range_does_not_fire_r02() -> None:
    assert _titrated("30").rule("R02") == []


def test_titrating_back_into_the_range_resolves_r02() -> None:
    story = _titrated("35")
    story.delivery("infusion.rate_changed", 30, new_rate=q("75", "mL/h"),
                   new_dose_rate=q(20, "ug/min"))
    (finding,) = story.rule("R02")
    assert finding["status"] == "resolved"


def test_a_dose_rate_in_another_unit_is_left_to_r06_and_r01() -> None:
    assert _titrated_in_other_unit().rule("R02") == []


def _titrated_in_other_unit() -> Story:
    story = _titrated("20")
    story.delivery("infusion.rate_changed", 30, new_rate=q("75", "mL/h"),
                   new_dose_rate=q(2, "mg/h"))
    return story
