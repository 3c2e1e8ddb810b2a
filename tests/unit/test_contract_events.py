"""Every v1 event type validates from the bundled examples, and each type's required rules hold."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.contract import (
    EVENT_TYPES,
    INTERNAL_TYPES,
    MODELS,
    PUBLIC_TYPES,
    Envelope,
    InfusionStatusReported,
    OrderHeld,
    OrderPlaced,
    OrderReleased,
    parse_event,
    subject_of,
)
from ledger.errors import ContractError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contract"
PUBLIC_LINES = (FIXTURES / "valid_events.ndjson").read_text(encoding="utf-8").splitlines()
INTERNAL_LINES = (FIXTURES / "valid_internal_events.ndjson").read_text().splitlines()
EXAMPLES: dict[str, dict[str, Any]] = {
    json.loads(line)["type"]: json.loads(line) for line in PUBLIC_LINES + INTERNAL_LINES
}


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[kind])


def refusal(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        parse_event(json.dumps(document), allow_internal=True)
    return [(error.path, error.code) for error in caught.value.errors]


# --- the bundled examples --------------------------------------------------------------------


def test_the_bundled_example_file_has_exactly_one_line_per_producer_type() -> None:
    types = [json.loads(line)["type"] for line in PUBLIC_LINES]
    assert sorted(types) == sorted(PUBLIC_TYPES)


def test_the_internal_examples_cover_every_internal_type() -> None:
    assert {json.loads(line)["type"] for line in INTERNAL_LINES} == INTERNAL_TYPES


@pytest.mark.parametrize("line", PUBLIC_LINES, ids=lambda line: json.loads(line)["type"])
def test_every_producer_type_has_a_valid_example(line: str) -> None:
    # Given one line of the bundled NDJSON, as bytes off the wire
    # When it is parsed
    event = parse_event(line.encode("utf-8"))
    # Then it becomes that type's model
    assert isinstance(event, MODELS[event.type])
    assert event.type == json.loads(line)["type"]


@pytest.mark.parametrize("line", INTERNAL_LINES, ids=lambda line: json.loads(line)["type"])
def test_every_internal_type_has_a_valid_example_when_internal_types_are_allowed(
    line: str,
) -> None:
    assert parse_event(line, allow_internal=True).type == json.loads(line)["type"]


def test_the_type_sets_partition_every_type() -> None:
    assert PUBLIC_TYPES | INTERNAL_TYPES == EVENT_TYPES
    assert not PUBLIC_TYPES & INTERNAL_TYPES
    assert {"discrepancy.reviewed", "access.recorded", "access.sealed"} == INTERNAL_TYPES
    assert len(EVENT_TYPES) == 42


def test_models_are_frozen() -> None:
    event = parse_event(json.dumps(example("infusion.status_reported")))
    with pytest.raises(ValueError, match="frozen"):
        event.type = "infusion.started"  # type: ignore[misc]


def test_subject_of_returns_the_ids_the_event_is_about() -> None:
    event = parse_event(json.dumps(example("infusion.status_reported")))
    assert isinstance(event, InfusionStatusReported)
    assert subject_of(event).pump_id == "PUMP-0042"
    assert subject_of(event).channel == "A"


def test_a_mapping_built_in_code_is_accepted_like_json() -> None:
    assert isinstance(parse_event(example("order.placed")), OrderPlaced)


# --- required subject ids per type -----------------------------------------------------------

REQUIRED_SUBJECT_IDS = {
    "order.placed": ["order_id", "patient_id"],
    "documentation.validated": ["order_id", "patient_id"],
    "patient.located": ["patient_id"],
    "bcma.scan_recorded": ["patient_id"],
    "pump.associated": ["pump_id", "channel", "patient_id"],
    "program.auto_requested": ["pump_id", "channel", "order_id"],
    "program.confirmed": ["pump_id", "channel"],
    "infusion.started": ["pump_id", "channel"],
    "ders.limit_alert_raised": ["pump_id", "channel"],
    "pump.library_activated": ["pump_id"],
    "alarm.raised": ["pump_id", "alarm_id"],
    "pump.clock_changed": ["pump_id"],
}


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field) for kind, fields in REQUIRED_SUBJECT_IDS.items() for field in fields],
)
def test_a_missing_required_subject_id_is_reported_at_its_path(kind: str, field: str) -> None:
    # Given a valid event of the type without one of the ids its type requires
    document = example(kind)
    del document["subject"][field]
    # Then the refusal names that id
    assert refusal(document) == [(f"subject.{field}", "missing")]


def test_a_null_required_subject_id_is_refused() -> None:
    document = example("infusion.started")
    document["subject"]["channel"] = None
    assert refusal(document) == [("subject.channel", "string_type")]


def test_any_type_may_carry_subject_ids_it_does_not_require() -> None:
    document = example("pump.library_activated")
    document["subject"].update(channel="A", patient_id="MRN-1", alarm_id="AL-1")
    assert parse_event(json.dumps(document)).subject.alarm_id == "AL-1"


def test_channel_ids_are_strings_not_numbers() -> None:
    document = example("infusion.started")
    document["subject"]["channel"] = 2
    assert refusal(document) == [("subject.channel", "string_type")]


# --- required data fields per type -----------------------------------------------------------

REQUIRED_DATA = {
    "order.placed": ["medication"],
    "patient.located": ["unit"],
    "bcma.scan_recorded": ["scan_type", "value", "result"],
    "program.auto_requested": ["request_id", "medication"],
    "program.auto_accepted": ["request_id"],
    "program.auto_rejected": ["request_id"],
    "program.confirmed": ["mode", "medication", "rate", "library_mode"],
    "infusion.started": ["rate"],
    "infusion.rate_changed": ["new_rate"],
    "infusion.kvo_started": ["rate"],
    "infusion.status_reported": ["state"],
    "ders.limit_alert_raised": ["alert_id", "limit_kind", "parameter"],
    "ders.limit_alert_resolved": ["alert_id", "outcome"],
    "pump.library_activated": ["library_version"],
    "alarm.raised": ["code", "priority"],
    "documentation.validated": ["observed_at"],
    "documentation.edited": ["field", "device_value", "charted_value"],
    "documentation.entered_manually": ["observed_at"],
    "pump.communication_changed": ["status"],
    "pump.clock_changed": ["previous_time", "new_time"],
    "discrepancy.reviewed": ["finding_id", "outcome"],
}


@pytest.mark.parametrize(
    ("kind", "field"), [(kind, field) for kind, fields in REQUIRED_DATA.items() for field in fields]
)
def test_a_missing_required_data_field_is_reported_at_its_path(kind: str, field: str) -> None:
    document = example(kind)
    del document["data"][field]
    assert (f"data.{field}", "missing") in refusal(document)


@pytest.mark.parametrize("field", ["event_id", "type", "schema_version", "occurred_at", "source"])
def test_a_missing_envelope_field_is_reported(field: str) -> None:
    document = example("infusion.resumed")
    del document[field]
    assert (field, "missing") in refusal(document)


def test_data_is_required_even_when_the_type_carries_nothing() -> None:
    document = example("order.verified")
    del document["data"]
    assert refusal(document) == [("data", "missing")]


def test_the_medication_name_is_required_and_code_and_system_are_not() -> None:
    document = example("order.placed")
    document["data"]["medication"] = {"code": "235473"}
    assert refusal(document) == [("data.medication.name", "missing")]
    document["data"]["medication"] = {"name": "heparin"}
    assert parse_event(document).data.medication.name == "heparin"


# --- "at least one" rules ----------------------------------------------------------------------


def test_an_order_without_dose_or_rate_is_refused() -> None:
    document = example("order.placed")
    for field in ("dose", "rate", "titration"):
        del document["data"][field]
    assert refusal(document) == [("data", "at_least_one_required")]


def test_an_order_with_only_a_rate_is_accepted() -> None:
    document = example("order.placed")
    for field in ("dose", "titration"):
        del document["data"][field]
    document["data"]["rate"] = {"value": "13.3", "unit": "mL/h"}
    assert parse_event(document).data.rate is not None


def test_a_bolus_without_dose_or_volume_is_refused() -> None:
    document = example("infusion.bolus_delivered")
    document["data"]["dose"] = None
    del document["data"]["volume"]
    assert refusal(document) == [("data", "at_least_one_required")]


@pytest.mark.parametrize("kind", ["documentation.validated", "documentation.entered_manually"])
def test_charting_without_rate_dose_rate_or_volume_is_refused(kind: str) -> None:
    document = example(kind)
    for field in ("rate", "dose_rate", "volume_infused"):
        document["data"].pop(field, None)
    assert refusal(document) == [("data", "at_least_one_required")]


def test_a_retraction_must_name_the_retracted_entry() -> None:
    document = example("documentation.retracted")
    del document["corrects_event_id"]
    assert refusal(document) == [("corrects_event_id", "missing")]


def test_manual_entries_carry_no_device_event_ids() -> None:
    document = example("documentation.entered_manually")
    document["data"]["source_event_ids"] = []
    assert refusal(document) == [("data.source_event_ids", "extra_forbidden")]


# --- defaults and optional fields --------------------------------------------------------------


def test_order_defaults_are_not_high_alert_and_continuous() -> None:
    document = example("order.placed")
    del document["data"]["high_alert"]
    document["data"]["continuous"] = None
    data = parse_event(document).data
    assert (data.high_alert, data.continuous) == (False, True)


def test_an_order_modification_leaves_unsent_flags_unknown_rather_than_defaulted() -> None:
    data = parse_event(example("order.modified")).data
    assert data.high_alert is None and data.continuous is None


def test_the_infusate_source_defaults_to_primary() -> None:
    document = example("infusion.paused")
    document["data"].pop("infusate_source", None)
    assert parse_event(document).data.infusate_source == "primary"


def test_optional_fields_may_be_null() -> None:
    document = example("infusion.started")
    document.update(received_at=None, actor=None, correlation_id=None, corrects_event_id=None)
    document["data"].update(dose_rate=None, vtbi=None)
    event = parse_event(json.dumps(document))
    assert event.received_at is None and event.data.vtbi is None


def test_an_order_status_takes_effect_at_occurred_at_unless_it_says_otherwise() -> None:
    released = parse_event(example("order.released"))
    assert isinstance(released, OrderReleased)
    assert released.effective_at == released.occurred_at
    held = parse_event(example("order.held"))
    assert isinstance(held, OrderHeld)
    assert held.effective_at == held.data.effective_at


def test_only_the_free_text_reason_may_be_an_empty_string() -> None:
    resolved = example("ders.limit_alert_resolved")
    resolved["data"]["reason_text"] = ""
    assert parse_event(resolved).data.reason_text == ""
    resolved["data"]["reason_code"] = ""
    assert refusal(resolved) == [("data.reason_code", "string_too_short")]


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("infusion.paused", "reason", "coffee"),
        ("alarm.raised", "priority", "HIGH"),
        ("bcma.scan_recorded", "result", "matched"),
        ("program.confirmed", "library_mode", "none"),
    ],
)
def test_enums_accept_only_their_lower_case_values(kind: str, field: str, value: str) -> None:
    document = example(kind)
    document["data"][field] = value
    assert refusal(document) == [(f"data.{field}", "literal_error")]


def test_every_model_is_an_envelope_subclass() -> None:
    assert all(issubclass(model, Envelope) for model in MODELS.values())
