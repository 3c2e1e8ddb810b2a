"""Golden FHIR R4 output for representative infusions: byte-stable and valid R4.

Each case renders one chart entry of the shared story (``test_documentation_fold``) with
the documentation actions that reach it, compares the canonical bytes with
``tests/fixtures/fhir/golden/<case>.json`` and validates the resource with
``fhir.resources.R4B`` (the package's R4 models; its top-level modules are R5). Run with
``LEDGER_UPDATE_GOLDEN=1`` to rewrite the files after an intended change, and review the
diff: these bytes are what the EHR receives.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from hypothesis import given
from hypothesis import strategies as st

from projections.documentation.feed import Page, bundle_json
from projections.documentation.fhir import (
    canonical_json,
    medication_administration,
    reference_canonical_json,
)
from projections.documentation.status import documentation_state, entry_document
from tests.support.records import channel, record
from tests.unit.test_documentation_fold import Folded, charting, ev, fold, story
from tests.unit.test_documentation_status import actions

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "fhir" / "golden"


def _cleared() -> Folded:
    return fold([story()[0], record("program.cleared", minute=5, position=30,
                                    event_id=ev(30), subject=channel(), data={})])


def cases() -> dict[str, dict[str, Any]]:
    """Chart-ready documents of the representative entries, keyed by golden file name."""
    folded = fold([*story(), *charting()])
    linked = actions(folded)

    def doc(entry: dict[str, Any], *action_ids: str) -> dict[str, Any]:
        state = documentation_state(entry, [linked[a] for a in action_ids])
        return entry_document(entry, state)

    hour = next(v for v in folded.of("volume") if v["period_end"].endswith("15:00:00Z"))
    return {
        "start_weight_based_proposed": doc(folded.of("start")[0]),
        "rate_change_validated_then_edited": doc(folded.of("rate_change")[0], ev(8), ev(9)),
        "hourly_volume_validated_with_a_different_value": doc(hour, ev(10)),
        "pause_on_hold": doc(folded.of("pause")[0]),
        "bolus_completed": doc(folded.of("bolus")[0]),
        "infusion_stopped": doc(folded.of("infusion")[0]),
        "manual_entry_retracted": doc(folded.of("manual")[0], ev(11), ev(12)),
        "cleared_before_start_not_done": doc(_cleared().entries[0]),
    }


CASES = cases()


def rendered(document: dict[str, Any]) -> bytes:
    return (canonical_json(medication_administration(document)) + "\n").encode()


def golden(name: str, content: bytes) -> bytes:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("LEDGER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return path.read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_representative_entry_renders_its_golden_r4_resource_byte_for_byte(
    name: str,
) -> None:
    content = rendered(CASES[name])
    assert content == golden(name, content)
    assert rendered(cases()[name]) == content, "rendering again gives the same bytes"
    resource = MedicationAdministration.model_validate_json(content)
    assert resource.id == CASES[name]["entry_id"]


def test_the_fhir_status_follows_domain_section_3() -> None:
    statuses = {n: json.loads(rendered(d))["status"] for n, d in CASES.items()}
    assert statuses == {
        "start_weight_based_proposed": "in-progress",
        "rate_change_validated_then_edited": "in-progress",
        "hourly_volume_validated_with_a_different_value": "completed",
        "pause_on_hold": "on-hold", "bolus_completed": "completed",
        "infusion_stopped": "stopped", "manual_entry_retracted": "entered-in-error",
        "cleared_before_start_not_done": "not-done",
    }


def test_an_edited_value_is_charted_with_the_device_value_beside_it() -> None:
    resource = json.loads(rendered(CASES["rate_change_validated_then_edited"]),
                          parse_float=Decimal)
    rate = resource["dosage"]["rateQuantity"]
    assert (rate["value"], rate["code"]) == (Decimal("19.5"), "mL/h")
    assert rate["extension"][0]["valueQuantity"]["value"] == 20
    assert resource["performer"][0]["function"]["coding"][0]["code"] == "verifier"
    assert [p["activity"]["text"] for p in resource["contained"][1:]] == ["validated", "edited"]


def test_decimals_leave_as_exact_json_numbers_with_their_scale() -> None:
    content = rendered(CASES["start_weight_based_proposed"]).decode()
    assert '"rateQuantity":{"value":14.40,"unit":"mL/h"' in content
    assert '"valueQuantity":{"value":18,"unit":"[iU]/kg/h"' in content


def test_a_feed_page_as_a_history_bundle_is_valid_r4() -> None:
    rows = [{"seq": n, "entry_id": d["entry_id"], "revision": d["revision"],
             "first_revision": n == 1, "resource_id": d["entry_id"],
             "resource": canonical_json(medication_administration(d))}
            for n, d in enumerate(CASES.values(), start=1)]
    content = bundle_json(Page(rows, 0), "https://ledger.example/v1/feed/documentation/bundle",
                          "https://ledger.example/v1/feed/documentation/bundle?after=x")
    bundle = Bundle.model_validate_json(content)
    assert bundle.type == "history" and len(bundle.entry or []) == len(CASES)
    assert [e.request.method for e in bundle.entry or []][:2] == ["POST", "PUT"]
    empty = Bundle.model_validate_json(bundle_json(Page([], 7), "https://x/b", None))
    assert empty.entry is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fast_writer_gives_the_reference_bytes(name: str) -> None:
    resource = medication_administration(CASES[name])
    assert canonical_json(resource) == reference_canonical_json(resource)


@given(st.recursive(
    # (integers beyond 64 bits never occur in a chart entry; orjson refuses them)
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
))
def test_the_fast_writer_matches_the_reference_for_any_document(document: Any) -> None:
    assert canonical_json(document) == reference_canonical_json(document)


def test_the_reference_refuses_binary_floats() -> None:
    with pytest.raises(TypeError, match="float"):
        reference_canonical_json({"value": 1.5})
