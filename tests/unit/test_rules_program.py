"""Rules on the program confirmed on the pump: R04 R05 R06 R10 R11 R12 R14 R15 R17 R18 R29."""

from __future__ import annotations

from typing import Any

from tests.unit.test_rules_support import (
    EPI,
    HEPARIN,
    NOREPI,
    NOREPI_CONC,
    Story,
    heparin_running,
    q,
)


def _review(story: Story, finding: dict[str, Any], minute: float, outcome: str) -> None:
    story.review(finding, minute, outcome)


def _norepi(story: Story, **program: Any) -> Story:
    story.located(0)
    story.order(1, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                dosing_weight=None)
    story.associate(2)
    body = {"mode": "manual", "medication": NOREPI, "concentration": NOREPI_CONC,
            "rate": q("37.5", "mL/h"), "dose": q(10, "ug/min"), "dosing_weight": None}
    body.update(program)
    story.confirm(3, **body)
    story.start(4, "37.5")
    return story


# -- R04 ----------------------------------------------------------------------------------
def test_a_look_alike_drug_on_the_pump_is_an_s1_drug_mismatch() -> None:
    (finding,) = _norepi(Story(), medication=EPI).rule("R04")
    assert finding["severity"] == "S1"
    assert finding["evidence"]["programmed"]["name"] == "epinephrine"


def test_the_ordered_drug_on_the_pump_is_not_a_mismatch() -> None:
    assert _norepi(Story()).rule("R04") == []


def test_clearing_the_wrong_drug_resolves_the_mismatch() -> None:
    story = _norepi(Story(), medication=EPI)
    story.delivery("infusion.stopped", 6)
    story.delivery("program.cleared", 6)
    (finding,) = story.rule("R04")
    assert finding["status"] == "resolved"


# -- R05 ----------------------------------------------------------------------------------
def test_a_double_strength_bag_is_a_concentration_mismatch() -> None:
    double = {"amount": q(8, "mg"), "volume": q(250, "mL")}
    (finding,) = _norepi(Story(), concentration=double).rule("R05")
    assert finding["severity"] == "S1"


def test_the_same_concentration_in_other_units_is_not_a_mismatch() -> None:
    same = {"amount": q(4000, "ug"), "volume": q("0.25", "L")}
    assert _norepi(Story(), concentration=same).rule("R05") == []


def test_reprogramming_the_right_concentration_resolves_r05() -> None:
    story = _norepi(Story(), concentration={"amount": q(8, "mg"), "volume": q(250, "mL")})
    story.confirm(8, mode="manual", medication=NOREPI, concentration=NOREPI_CONC,
                  rate=q("37.5", "mL/h"), dose=q(10, "ug/min"), dosing_weight=None)
    (finding,) = story.rule("R05")
    assert finding["status"] == "resolved"


# -- R06 ----------------------------------------------------------------------------------
def test_dosing_per_hour_for_a_per_kilogram_order_is_a_unit_mismatch() -> None:
    story = heparin_running(Story(), dose=q(18, "[iU]/h"))
    (finding,) = story.rule("R06")
    assert (finding["evidence"]["ordered_unit"], finding["evidence"]["programmed_unit"]) == (
        "[iU]/kg/h", "[iU]/h")


def test_a_unit_alias_is_not_a_unit_mismatch() -> None:
    story = Story()
    story.order(0, medication={"name": "potassium chloride"}, dose=q(10, "meq/h"),
                concentration={"amount": q(20, "meq"), "volume": q(100, "mL")},
                dosing_weight=None)
    story.associate(1)
    story.confirm(2, mode="manual", medication={"name": "potassium chloride"},
                  dose=q(10, "mEq/h"), concentration={"amount": q(20, "mEq"),
                                                      "volume": q(100, "mL")},
                  rate=q(50, "mL/h"), dosing_weight=None)
    assert story.rule("R06") == []


def test_stopping_resolves_the_unit_mismatch() -> None:
    story = heparin_running(Story(), dose=q(18, "[iU]/h"))
    story.delivery("infusion.stopped", 12)
    (finding,) = story.rule("R06")
    assert finding["status"] == "resolved"


# -- R10 ----------------------------------------------------------------------------------
def test_editing_an_auto_program_on_the_pump_is_r10_with_the_fields_edited() -> None:
    story = heparin_running(Story(), rate="16")  # requested 14.4, confirmed 16 (11 % over)
    (finding,) = story.rule("R10")
    assert finding["evidence"]["edited_fields"] == ["rate"]
    assert finding["severity"] == "S2"  # the edit moved the rate outside the order


def test_an_auto_program_confirmed_as_requested_is_not_r10() -> None:
    assert heparin_running(Story()).rule("R10") == []


def test_a_review_closes_an_r10_finding() -> None:
    story = heparin_running(Story(), vtbi=q(200, "mL"))
    (finding,) = story.rule("R10")
    assert finding["severity"] == "S3"  # a smaller VTBI stays inside the order
    _review(story, finding, 30, "accepted_risk")
    (finding,) = story.rule("R10")
    assert finding["status"] == "accepted_risk"


# -- R11 ----------------------------------------------------------------------------------
def test_a_manual_program_for_an_order_that_could_be_auto_programmed_is_r11() -> None:
    story = _norepi(Story())
    story.clock_until(20)  # no request arrived, even late
    (finding,) = story.rule("R11")
    assert finding["severity"] == "S3"
    assert finding["opened_at"] == finding["triggered_at"]


def test_a_manual_program_after_a_rejected_auto_program_is_not_r11() -> None:
    story = Story()
    story.order(1, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                dosing_weight=None)
    story.request(2, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                  dosing_weight=None, rate=q("37.5", "mL/h"))
    story.add("program.auto_rejected", 2.1, story.channel_subject(),
              {"request_id": "REQ-1", "reason_code": "AE"})
    story.confirm(3, mode="manual", medication=NOREPI, concentration=NOREPI_CONC,
                  rate=q("37.5", "mL/h"), dose=q(10, "ug/min"), dosing_weight=None)
    story.clock_until(20)
    assert story.rule("R11") == []


def test_a_rejected_request_that_arrives_after_the_manual_program_still_counts() -> None:
    story = Story()
    story.order(1, medication=NOREPI, concentration=NOREPI_CONC, dose=q(10, "ug/min"),
                dosing_weight=None)
    story.confirm(3, mode="manual", medication=NOREPI, concentration=NOREPI_CONC,
                  rate=q("37.5", "mL/h"), dose=q(10, "ug/min"), dosing_weight=None)
    story.add("program.auto_requested", 2, story.channel_subject(),
              {"request_id": "REQ-9", "medication": NOREPI}, received=5)
    story.clock_until(20)
    assert story.rule("R11") == []


def test_an_auto_program_request_arriving_after_its_confirmation_is_still_compared() -> None:
    story = Story()
    story.order(0)
    story.associate(1)
    story.confirm(3, rate=q("16", "mL/h"))
    story.request(2, received=6)
    (finding,) = story.rule("R10")
    assert finding["evidence"]["edited_fields"] == ["rate"]


def test_a_review_closes_an_r11_finding() -> None:
    story = _norepi(Story())
    story.clock_until(20)
    (finding,) = story.rule("R11")
    _review(story, finding, 10, "confirmed")
    assert story.rule("R11")[0]["status"] == "confirmed"


# -- R12 ----------------------------------------------------------------------------------
def test_basic_mode_for_heparin_is_an_s1_library_bypass() -> None:
    story = heparin_running(Story(), library_mode="basic", library_entry_id=None,
                            mode="manual", request_id=None)
    (finding,) = story.rule("R12")
    assert finding["severity"] == "S1"


def test_library_mode_is_not_a_bypass() -> None:
    assert heparin_running(Story()).rule("R12") == []


def test_reprogramming_in_library_mode_resolves_the_bypass() -> None:
    story = heparin_running(Story(), library_mode="basic", library_entry_id=None,
                            mode="manual", request_id=None)
    story.confirm(15, mode="manual")
    (finding,) = story.rule("R12")
    assert finding["status"] == "resolved"


# -- R14 ----------------------------------------------------------------------------------
def _hard_then_basic(story: Story, minutes_later: float) -> Story:
    story.located(0)
    story.order(1)
    story.associate(2)
    subject = story.channel_subject()
    story.add("ders.limit_alert_raised", 3, subject, {
        "alert_id": "D1", "limit_kind": "hard", "parameter": "dose", "bound": "upper",
        "limit": q(40, "[iU]/kg/h"), "programmed": q(180, "[iU]/kg/h"), "care_area": "ICU"})
    story.add("ders.limit_alert_resolved", 3.2, subject, {"alert_id": "D1",
                                                          "outcome": "cancelled"})
    story.confirm(3 + minutes_later, mode="manual", request_id=None, library_mode="basic",
                  library_entry_id=None, dose=None, concentration=None, dosing_weight=None)
    return story


def test_basic_mode_right_after_a_hard_limit_is_an_s1_workaround() -> None:
    (finding,) = _hard_then_basic(Story(), 4).rule("R14")
    assert finding["severity"] == "S1"
    assert finding["evidence"]["alert"]["alert_id"] == "D1"


def test_basic_mode_well_after_the_window_is_not_r14() -> None:
    assert _hard_then_basic(Story(), 20).rule("R14") == []


def test_a_review_closes_an_r14_finding() -> None:
    story = _hard_then_basic(Story(), 4)
    (finding,) = story.rule("R14")
    _review(story, finding, 30, "confirmed")
    assert story.rule("R14")[0]["status"] == "confirmed"


# -- R15 ----------------------------------------------------------------------------------
def test_an_adult_profile_for_a_patient_in_the_nicu_is_a_care_area_mismatch() -> None:
    story = Story()
    story.located(0, unit="NICU-1", care_area="NICU")
    story.order(1)
    story.associate(2)
    story.auto_start(5, care_area="ICU")
    (finding,) = story.rule("R15")
    assert finding["evidence"]["patient_care_area"] == "NICU"


def test_the_patient_s_own_care_area_is_not_r15() -> None:
    assert heparin_running(Story()).rule("R15") == []


def test_stopping_resolves_the_care_area_mismatch() -> None:
    story = Story()
    story.located(0, unit="NICU-1", care_area="NICU")
    story.order(1)
    story.associate(2)
    story.auto_start(5, care_area="ICU")
    story.delivery("infusion.stopped", 9)
    story.delivery("program.cleared", 9)
    assert story.rule("R15")[0]["status"] == "resolved"


# -- R17 ----------------------------------------------------------------------------------
def test_a_weight_ten_percent_off_is_an_s2_weight_discrepancy() -> None:
    (finding,) = heparin_running(Story(), dosing_weight=q(88, "kg")).rule("R17")
    assert finding["severity"] == "S2"


def test_pounds_keyed_as_kilograms_is_an_s1_weight_discrepancy() -> None:
    (finding,) = heparin_running(Story(), dosing_weight=q("176.4", "kg")).rule("R17")
    assert finding["severity"] == "S1"


def test_a_weight_within_two_percent_is_not_a_discrepancy() -> None:
    assert heparin_running(Story(), dosing_weight=q("81.5", "kg")).rule("R17") == []


def test_the_same_weight_in_grams_is_not_a_discrepancy() -> None:
    assert heparin_running(Story(), dosing_weight=q(80000, "g")).rule("R17") == []


def test_stopping_resolves_the_weight_discrepancy() -> None:
    story = heparin_running(Story(), dosing_weight=q(88, "kg"))
    story.delivery("infusion.stopped", 30)
    assert story.rule("R17")[0]["status"] == "resolved"


# -- R18 ----------------------------------------------------------------------------------
def test_a_vtbi_above_the_ordered_volume_plus_overfill_is_r18() -> None:
    assert len(heparin_running(Story(), vtbi=q(300, "mL")).rule("R18")) == 1


def test_a_vtbi_within_the_overfill_allowance_is_not_r18() -> None:
    assert heparin_running(Story(), vtbi=q(270, "mL")).rule("R18") == []


def test_stopping_resolves_r18() -> None:
    story = heparin_running(Story(), vtbi=q(300, "mL"))
    story.delivery("infusion.stopped", 30)
    assert story.rule("R18")[0]["status"] == "resolved"


# -- R29 ----------------------------------------------------------------------------------
def _started_after(minutes: float) -> Story:
    story = Story()
    story.order(0)
    story.associate(1)
    story.request(2)
    story.confirm(2 + minutes - 0.5)
    story.start(2 + minutes)
    return story


def test_an_auto_program_started_twenty_minutes_after_its_request_is_stale() -> None:
    (finding,) = _started_after(20).rule("R29")
    assert finding["severity"] == "S3"


def test_an_auto_program_started_promptly_is_not_stale() -> None:
    assert _started_after(2).rule("R29") == []


def test_an_auto_program_started_after_the_order_changed_is_stale() -> None:
    story = Story()
    story.order(0)
    story.associate(1)
    story.request(2)
    story.order_event("order.modified", 3, dose=q(20, "[iU]/kg/h"))
    story.confirm(4)
    story.start(5)
    (finding,) = story.rule("R29")
    assert finding["evidence"]["order_modified_at"] is not None


def test_a_review_closes_an_r29_finding() -> None:
    story = _started_after(20)
    (finding,) = story.rule("R29")
    _review(story, finding, 40, "false_positive")
    assert story.rule("R29")[0]["status"] == "false_positive"


def test_heparin_fixture_medication_is_high_alert_by_name() -> None:
    from projections.discrepancies import ruleset

    assert ruleset.load().high_alert.matches(HEPARIN)
