"""An entry's documentation status from the actions linked to it, and the feed's cursors."""

from __future__ import annotations

from typing import Any

import pytest

from projections.documentation.feed import InvalidCursor, decode_cursor, encode_cursor
from projections.documentation.projection import _ACTION_COLUMNS
from projections.documentation.status import documentation_state, entry_document
from tests.unit.test_documentation_fold import Folded, charting, ev, fold, q, story


def actions(folded: Folded) -> dict[str, dict[str, Any]]:
    return {a[0]: dict(zip(_ACTION_COLUMNS, a, strict=True)) for a in folded.actions}


@pytest.fixture(scope="module")
def folded() -> Folded:
    return fold([*story(), *charting()])


def test_an_entry_nobody_charted_yet_is_proposed(folded: Folded) -> None:
    (start,) = folded.of("start")
    state = documentation_state(start, [])
    assert (state.status, state.fhir_status, state.revision) == ("proposed", "in-progress", 2)
    assert state.charted_value("rate", start["facts"]) is None


def test_an_edit_keeps_both_the_device_value_and_the_charted_value(folded: Folded) -> None:
    (change,) = folded.of("rate_change")
    linked = actions(folded)
    state = documentation_state(change, [linked[ev(8)], linked[ev(9)]])
    assert state.status == "edited" and state.validated_by == "RN-0311"
    assert state.charted["rate"]["device"] == q("20")
    assert state.charted["rate"]["charted"] == q("19.5")
    assert state.charted_value("rate", change["facts"]) == "19.5"
    assert state.charted_value("dose_rate", change["facts"]) == "25", \
        "a validated entry charts the device values the nurse did not change"
    assert state.revision == 9
    document = entry_document({**change, "patient_id": "MRN-1"}, state)
    assert [h["action"] for h in document["documentation"]] == ["validated", "edited"]
    assert document["values"]["rate"] == q("20"), "the device value is never overwritten"


def test_retracting_an_edit_voids_the_edit_and_keeps_the_validation(folded: Folded) -> None:
    (change,) = folded.of("rate_change")
    linked = actions(folded)
    undo = {**linked[ev(12)], "event_id": ev(13), "refers_to": ev(9), "position": 13}
    state = documentation_state(change, [linked[ev(8)], linked[ev(9)], undo])
    assert state.status == "validated" and "rate" in state.charted
    assert state.charted["rate"]["source"] == "validated"
    assert state.history[1].get("voided") is True


def test_retracting_what_was_charted_makes_the_entry_entered_in_error(folded: Folded) -> None:
    (manual,) = folded.of("manual")
    linked = actions(folded)
    state = documentation_state(manual, [linked[ev(11)], linked[ev(12)]])
    assert (state.status, state.fhir_status) == ("retracted", "entered-in-error")
    assert state.charted_value("volume_infused", manual["facts"]) is None


def test_a_volume_charted_in_the_flowsheet_is_the_volume_of_the_interval(folded: Folded) -> None:
    hour = next(v for v in folded.of("volume") if v["period_end"].endswith("15:00:00Z"))
    state = documentation_state(hour, [actions(folded)[ev(10)]])
    assert state.status == "validated"
    assert state.charted["volume"]["device"] == q("33.60", "mL")
    assert state.charted_value("volume", hour["facts"]) == "22.5"


def test_cursors_are_opaque_url_safe_and_refuse_anything_they_did_not_issue() -> None:
    cursor = encode_cursor(123_456)
    assert cursor.replace("-", "").replace("_", "").isalnum()
    assert decode_cursor(cursor) == 123_456 and decode_cursor(None) == 0
    for forged in ("123456", cursor[:-1] + ("A" if cursor[-1] != "A" else "B"), "!!"):
        with pytest.raises(InvalidCursor):
            decode_cursor(forged)
