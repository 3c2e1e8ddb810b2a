"""Who may receive what: R07 patient, R08 order, R09 stopped order, R25 omission, R27
duplicate therapy. Deadlines fire on event time: later events move the clock."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.test_rules_support import SALINE, T0, Story, heparin_running, q


def us(minute: float) -> int:
    """A story minute as the engine's instants (microseconds since the epoch)."""
    return int((T0 + timedelta(minutes=minute)).timestamp() * 1_000_000)


# -- R07 ----------------------------------------------------------------------------------
def _wrong_patient() -> Story:
    story = Story()
    story.order(0, patient="P1")
    story.associate(2, patient="P2")
    story.confirm(3, mode="manual", request_id=None, ids={})
    story.start(4)
    return story


def test_an_order_running_on_another_patient_s_channel_is_an_s1_patient_mismatch() -> None:
    story = Story(patient="P2")
    story.order(0, patient="P1")
    story.associate(2)
    story.confirm(3, mode="manual", request_id=None)
    story.start(4)
    (finding,) = story.rule("R07")
    assert finding["severity"] == "S1"
    assert finding["patient_id"] == "P2"
    assert finding["evidence"]["order_patient"] == "P1"


def test_the_order_s_own_patient_is_not_a_mismatch() -> None:
    assert heparin_running(Story()).rule("R07") == []


def test_stopping_the_wrong_patient_infusion_resolves_r07() -> None:
    story = Story(patient="P2")
    story.order(0, patient="P1")
    story.associate(2)
    story.confirm(3, mode="manual", request_id=None)
    story.start(4)
    story.delivery("infusion.stopped", 30)
    assert story.rule("R07")[0]["status"] == "resolved"


def _unassociated(associate_at: float | None, until: float = 40) -> Story:
    story = Story(patient="")
    story.order(0, patient="P1")
    story.confirm(3, mode="manual", request_id=None)
    story.start(4)
    if associate_at is not None:
        story.associate(associate_at, patient="P1")
    story.clock_until(until)
    return story


def test_delivering_with_no_association_past_the_grace_is_an_s2_finding() -> None:
    (finding,) = _unassociated(None).rule("R07")
    assert finding["severity"] == "S2"
    assert finding["status"] == "open"


def test_an_association_inside_the_grace_does_not_fire() -> None:
    assert _unassociated(9).rule("R07") == []


def test_a_late_association_resolves_the_unassociated_finding() -> None:
    story = _unassociated(None, until=20)
    association = story.associate(25, patient="P1")
    (finding,) = story.rule("R07")
    assert finding["status"] == "resolved"
    assert finding["resolving_event_id"] == association["event_id"]


# -- R08 ----------------------------------------------------------------------------------
def _unordered(order_at: float | None, until: float = 40) -> Story:
    story = Story()
    story.associate(1)
    story.confirm(2, order=None, mode="manual", request_id=None, medication=SALINE,
                  concentration=None, dose=None, dosing_weight=None, rate=q(100, "mL/h"))
    story.start(3, "100", order=None)
    if order_at is not None:
        story.order(order_at, medication=SALINE, concentration=None, dose=None,
                    dosing_weight=None, rate=q(100, "mL/h"), high_alert=False,
                    start_at=(story.events[0]["occurred_at"]))
    story.clock_until(until)
    return story


def test_an_infusion_with_no_order_is_r08_after_the_grace() -> None:
    (finding,) = _unordered(None).rule("R08")
    assert finding["severity"] == "S2"
    assert finding["opened_at"] < finding["detected_at"]


def test_an_order_arriving_late_but_active_at_the_start_is_not_r08() -> None:
    # The EHR feed lagged: the order arrives after the start, with a start_at before it.
    assert _unordered(6).rule("R08") == []


def test_an_order_placed_after_the_grace_resolves_r08() -> None:
    story = _unordered(None, until=20)
    story.order(25, medication=SALINE, concentration=None, dose=None, dosing_weight=None,
                rate=q(100, "mL/h"), high_alert=False)
    (finding,) = story.rule("R08")
    assert finding["status"] == "resolved"


def test_a_high_alert_drug_without_an_order_is_s1() -> None:
    story = Story()
    story.associate(1)
    story.confirm(2, order=None, mode="manual", request_id=None)
    story.start(3, order=None)
    story.clock_until(30)
    assert story.rule("R08")[0]["severity"] == "S1"


# -- R09 ----------------------------------------------------------------------------------
def _discontinued(stop_at: float | None, until: float = 60) -> Story:
    story = heparin_running(Story())
    story.order_event("order.discontinued", 20)
    if stop_at is not None:
        story.delivery("infusion.stopped", stop_at)
    story.clock_until(until)
    return story


def test_running_fifteen_minutes_after_a_discontinue_is_r09_s1_for_heparin() -> None:
    (finding,) = _discontinued(None).rule("R09")
    assert finding["severity"] == "S1"
    assert finding["opened_at"] == finding["triggered_at"] + 15 * 60 * 1_000_000


def test_stopping_within_the_grace_is_not_r09() -> None:
    assert _discontinued(30).rule("R09") == []


def test_stopping_after_the_grace_resolves_r09() -> None:
    story = _discontinued(None, until=40)
    stop = story.delivery("infusion.stopped", 50)
    (finding,) = story.rule("R09")
    assert finding["status"] == "resolved"
    assert finding["resolving_event_id"] == stop["event_id"]


def test_a_hold_released_within_the_grace_is_not_r09() -> None:
    story = heparin_running(Story())
    story.order_event("order.held", 20)
    story.order_event("order.released", 25)
    story.clock_until(60)
    assert story.rule("R09") == []


def test_an_order_past_its_stop_at_is_expired_for_r09() -> None:
    story = Story()
    story.located(0)
    story.order(1, stop_at=story.events[0]["occurred_at"].replace("12:00", "12:30"))
    story.associate(5)
    story.auto_start(10)
    story.clock_until(60)
    (finding,) = story.rule("R09")
    assert finding["evidence"]["order_status"] == "expired"


# -- R25 ----------------------------------------------------------------------------------
def _ordered(start_at: float | None, until: float = 90) -> Story:
    story = Story()
    story.order(0)
    story.associate(1)
    if start_at is not None:
        story.auto_start(start_at)
    story.clock_until(until)
    return story


def test_a_continuous_order_not_running_an_hour_after_its_start_is_r25() -> None:
    (finding,) = _ordered(None).rule("R25")
    assert finding["severity"] == "S2"
    assert finding["order_id"] == "O1" and finding["pump_id"] is None


def test_an_order_started_within_the_hour_is_not_r25() -> None:
    assert _ordered(30).rule("R25") == []


def test_a_start_after_the_hour_resolves_r25() -> None:
    story = _ordered(None, until=70)
    story.auto_start(80)
    (finding,) = story.rule("R25")
    assert finding["status"] == "resolved"


def test_an_intermittent_order_is_not_expected_to_run() -> None:
    story = Story()
    story.order(0, continuous=False)
    story.clock_until(90)
    assert story.rule("R25") == []


# -- R27 ----------------------------------------------------------------------------------
def _second_line(second_order: str = "O1") -> Story:
    story = heparin_running(Story())
    if second_order != "O1":
        story.order(12, order_id=second_order)
    story.associate(13, channel="B")
    story.confirm(14, order=second_order, mode="manual", request_id=None, ids={"channel": "B"})
    story.start(15, order=second_order, channel="B")
    return story


def test_the_same_drug_on_a_second_channel_of_the_patient_is_r27() -> None:
    (finding,) = _second_line().rule("R27")
    assert finding["severity"] == "S1"
    assert finding["channel"] == "B"
    assert finding["evidence"]["other_channel"] == "A"


def test_two_distinct_active_orders_for_two_lines_are_not_duplicate_therapy() -> None:
    assert _second_line("O2").rule("R27") == []


def test_stopping_the_first_line_resolves_duplicate_therapy() -> None:
    story = _second_line()
    story.delivery("infusion.stopped", 30)
    assert story.rule("R27")[0]["status"] == "resolved"


def _second_line_programmed_late(medication: dict[str, str] | None = None) -> Story:
    """The second line's start is stored before its program (the gateway delivered the
    program 3 minutes late): the drug is known only once the program arrives."""
    story = heparin_running(Story())
    story.associate(13, channel="B")
    story.start(15, channel="B")
    extra = {"medication": medication} if medication else {}
    story.confirm(14.9, mode="manual", request_id=None, ids={"channel": "B"}, received=18,
                  **extra)
    story.clock_until(30)
    return story


def test_a_duplicate_line_whose_program_arrives_late_is_r27_when_the_program_arrives() -> None:
    (finding,) = _second_line_programmed_late().rule("R27")
    assert (finding["channel"], finding["severity"]) == ("B", "S1")
    assert finding["evidence"]["other_channel"] == "A"
    assert finding["opened_at"] == us(15) and finding["triggered_at"] == us(14.9)


def test_a_late_program_of_another_drug_on_the_second_line_is_not_r27() -> None:
    assert _second_line_programmed_late(SALINE).rule("R27") == []


def test_when_the_first_line_s_program_arrives_late_r27_names_the_second_line() -> None:
    story = Story()
    story.located(0)
    story.order(1)
    story.associate(5)
    story.start(10)  # line A's program is still in the gateway
    story.associate(13, channel="B")
    story.confirm(14, mode="manual", request_id=None, ids={"channel": "B"})
    story.start(15, channel="B")
    story.confirm(9, mode="manual", request_id=None, received=17)  # A's, late
    story.clock_until(20)
    story.delivery("infusion.stopped", 25)  # line A
    (finding,) = story.rule("R27")
    assert (finding["channel"], finding["evidence"]["other_channel"]) == ("B", "A")
    assert finding["status"] == "resolved"
