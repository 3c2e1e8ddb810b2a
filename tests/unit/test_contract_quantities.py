"""Quantities on the wire: exact decimals, and each field accepting only its dimension."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.contract import parse_event
from ledger.errors import ContractError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contract"
EXAMPLES: dict[str, dict[str, Any]] = {
    json.loads(line)["type"]: json.loads(line)
    for line in (FIXTURES / "valid_events.ndjson").read_text(encoding="utf-8").splitlines()
}


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[kind])


def with_rate_literal(literal: str) -> str:
    """The infusion.started example as JSON text whose rate value is ``literal`` verbatim."""
    document = example("infusion.started")
    document["data"]["rate"]["value"] = "@@"
    return json.dumps(document).replace('"@@"', literal)


def errors(raw: str | dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        parse_event(raw)
    return [(error.path, error.code) for error in caught.value.errors]


def rate_of(raw: str | dict[str, Any]) -> Decimal:
    event = parse_event(raw)
    return event.data.rate.value  # type: ignore[union-attr]


# --- exactness -------------------------------------------------------------------------------


def test_a_decimal_string_and_the_same_json_number_give_the_same_exact_decimal() -> None:
    # Given the rate sent once as the string "31.875" and once as the JSON number 31.875
    as_string = with_rate_literal('"31.875"')
    as_number = with_rate_literal("31.875")
    # Then both read exactly Decimal("31.875")
    assert rate_of(as_string) == rate_of(as_number) == Decimal("31.875")
    assert str(rate_of(as_number)) == "31.875"


def test_a_json_number_keeps_its_scale_as_written() -> None:
    assert str(rate_of(with_rate_literal("14.40"))) == "14.40"


def test_a_json_number_is_read_from_its_literal_not_through_a_binary_float() -> None:
    # 0.1 + 0.2 as a double is 0.30000000000000004; as written it is 12 digits or fewer
    assert rate_of(with_rate_literal("0.300000000001")) == Decimal("0.300000000001")


def test_a_json_number_too_precise_for_a_float_is_refused_not_silently_rounded() -> None:
    # As a double this is 1.0, which would pass; read as written it has 21 digits
    assert errors(with_rate_literal("1.00000000000000000001")) == [
        ("data.rate.value", "too_many_digits")
    ]


def test_a_json_integer_is_exact() -> None:
    assert rate_of(with_rate_literal("125")) == Decimal("125")


def test_zero_is_allowed() -> None:
    assert rate_of(with_rate_literal('"0"')) == 0
    assert rate_of(with_rate_literal("0.0")) == 0


@pytest.mark.parametrize("literal", ['"1e3"', "1e3", '"1.5E-2"', "1.5E+2", "2E0"])
def test_an_exponent_is_rejected(literal: str) -> None:
    assert errors(with_rate_literal(literal)) == [("data.rate.value", "exponent_not_allowed")]


@pytest.mark.parametrize("literal", ['"1234567.890123"', "1234567890123", '"0.1000000000000"'])
def test_thirteen_significant_digits_are_rejected(literal: str) -> None:
    assert errors(with_rate_literal(literal)) == [("data.rate.value", "too_many_digits")]


def test_twelve_significant_digits_with_leading_zeros_are_fine() -> None:
    assert rate_of(with_rate_literal('"0.000123456789012"')) == Decimal("0.000123456789012")


@pytest.mark.parametrize("literal", ['"-1"', "-0.5", '"-0"', "-0.0"])
def test_a_negative_value_is_rejected(literal: str) -> None:
    assert errors(with_rate_literal(literal)) == [("data.rate.value", "negative_quantity")]


@pytest.mark.parametrize("literal", ['""', '" 12"', '"12."', '".5"', '"012"', '"NaN"', '"1,5"'])
def test_anything_but_a_plain_decimal_is_rejected(literal: str) -> None:
    assert errors(with_rate_literal(literal)) == [("data.rate.value", "invalid_decimal")]


@pytest.mark.parametrize("literal", ["true", "null", "[]", "{}"])
def test_a_non_number_value_is_rejected(literal: str) -> None:
    assert errors(with_rate_literal(literal)) == [("data.rate.value", "decimal_type")]


def test_a_python_float_in_a_mapping_is_rejected() -> None:
    document = example("infusion.started")
    document["data"]["rate"]["value"] = 14.4
    assert errors(document) == [("data.rate.value", "float_not_allowed")]


def test_a_python_decimal_or_int_in_a_mapping_is_accepted() -> None:
    document = example("infusion.started")
    document["data"]["rate"]["value"] = Decimal("14.40")
    assert str(rate_of(document)) == "14.40"
    document["data"]["rate"]["value"] = 14
    assert rate_of(document) == 14


def test_seconds_to_resolve_is_an_exact_decimal_too() -> None:
    document = example("ders.limit_alert_resolved")
    document["data"]["seconds_to_resolve"] = "-3"
    assert errors(document) == [("data.seconds_to_resolve", "negative_quantity")]


# --- one dimension per field -----------------------------------------------------------------


def test_a_duration_where_a_rate_belongs_is_rejected_with_the_field_path() -> None:
    # Given FHIR medicationadministration0305's mistake: a rate of 20 min
    document = example("infusion.started")
    document["data"]["rate"] = {"value": "20", "unit": "min"}
    # Then the refusal points at the unit of that field
    assert errors(document) == [("data.rate.unit", "wrong_dimension")]


@pytest.mark.parametrize(
    ("kind", "field", "unit"),
    [
        ("infusion.started", "rate", "mg/h"),
        ("infusion.started", "dose_rate", "mL/h"),
        ("infusion.started", "dose_rate", "mg"),
        ("infusion.started", "vtbi", "mL/h"),
        ("infusion.rate_changed", "new_rate", "ug/kg/min"),
        ("infusion.rate_changed", "previous_rate", "h"),
        ("infusion.rate_changed", "new_dose_rate", "mL/h"),
        ("infusion.paused", "volume_infused", "mg"),
        ("infusion.kvo_started", "rate", "mL"),
        ("infusion.bolus_delivered", "dose", "mg/h"),
        ("infusion.bolus_delivered", "volume", "mg"),
        ("infusion.status_reported", "time_remaining", "mL"),
        ("infusion.status_reported", "vtbi_remaining", "min"),
        ("order.placed", "dose", "mL/h"),
        ("order.placed", "rate", "ug/kg/min"),
        ("order.placed", "vtbi", "mg"),
        ("order.placed", "dosing_weight", "mg/kg"),
        ("program.confirmed", "dosing_weight", "L"),
        ("program.auto_requested", "dose", "kg"),
        ("documentation.validated", "volume_infused", "mL/h"),
    ],
)
def test_each_field_accepts_only_its_dimension(kind: str, field: str, unit: str) -> None:
    document = example(kind)
    document["data"][field] = {"value": "1", "unit": unit}
    assert errors(document) == [(f"data.{field}.unit", "wrong_dimension")]


def test_an_order_may_state_a_dose_rate_or_a_one_off_dose() -> None:
    document = example("order.placed")
    del document["data"]["titration"]
    for unit in ("ug/kg/min", "mg/h", "mg", "[iU]/kg"):
        document["data"]["dose"] = {"value": "10", "unit": unit}
        assert parse_event(document).data.dose.unit == unit  # type: ignore[union-attr]


def test_a_body_weight_may_be_in_grams() -> None:
    document = example("order.placed")
    document["data"]["dosing_weight"] = {"value": "3250", "unit": "g"}
    assert parse_event(document).data.dosing_weight.unit == "g"  # type: ignore[union-attr]


def test_a_concentration_is_an_amount_in_a_volume() -> None:
    document = example("order.placed")
    document["data"]["concentration"] = {
        "amount": {"value": "250", "unit": "mL"},
        "volume": {"value": "400", "unit": "mg"},
    }
    assert errors(document) == [
        ("data.concentration.amount.unit", "wrong_dimension"),
        ("data.concentration.volume.unit", "wrong_dimension"),
    ]


def test_an_unknown_unit_is_rejected_with_a_hint() -> None:
    document = example("infusion.started")
    document["data"]["rate"]["unit"] = "ml/hr"
    with pytest.raises(ContractError) as caught:
        parse_event(document)
    assert [(e.path, e.code) for e in caught.value.errors] == [("data.rate.unit", "unknown_unit")]


def test_mEq_is_accepted_and_stored_as_meq() -> None:
    document = example("order.placed")
    document["data"]["concentration"]["amount"] = {"value": "20", "unit": "mEq"}
    document["data"]["dose"] = {"value": "10", "unit": "mEq/h"}
    document["data"]["titration"] = {
        "min": {"value": "5", "unit": "mEq/h"},
        "max": {"value": "20", "unit": "meq/h"},
    }
    data = parse_event(document).data
    assert data.concentration.amount.unit == "meq"  # type: ignore[union-attr]
    assert data.dose.unit == "meq/h"  # type: ignore[union-attr]


def test_titration_bounds_share_one_dimension() -> None:
    document = example("order.placed")
    document["data"]["titration"]["step"] = {"value": "2", "unit": "mL/h"}
    assert errors(document) == [("data.titration.step.unit", "wrong_dimension")]


def test_titration_bounds_count_the_same_kind_of_amount() -> None:
    document = example("order.placed")
    document["data"]["titration"]["max"] = {"value": "2", "unit": "mg/kg/h"}
    assert errors(document) == [("data.titration.max.unit", "wrong_dimension")]


def test_titration_is_in_the_dimension_of_the_ordered_dose() -> None:
    document = example("order.placed")
    document["data"]["dose"] = {"value": "5000", "unit": "[iU]"}
    assert errors(document) == [("data.titration.min.unit", "wrong_dimension")]


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        ("rate", "mL/h", "ug/kg/min"),
        ("dose", "ug/kg/min", "mL/h"),
        ("dose", "mg", "mL"),
        ("vtbi", "mL", "mL/h"),
        ("concentration", "mg/mL", "mg"),
        ("bolus", "[iU]/kg", "[iU]/kg/h"),
    ],
)
def test_ders_limits_are_quantities_of_their_parameter(parameter: str, good: str, bad: str) -> None:
    document = example("ders.limit_alert_raised")
    document["data"]["parameter"] = parameter
    document["data"]["limit"] = {"value": "1", "unit": good}
    document["data"]["programmed"] = {"value": "2", "unit": good}
    assert parse_event(document).data.limit.unit == good  # type: ignore[union-attr]
    document["data"]["programmed"] = {"value": "2", "unit": bad}
    assert errors(document) == [("data.programmed.unit", "wrong_dimension")]


def test_a_documentation_edit_compares_values_of_the_edited_field() -> None:
    document = example("documentation.edited")
    document["data"]["field"] = "rate"
    assert errors(document) == [("data.device_value.unit", "wrong_dimension")]
    document["data"]["device_value"] = {"value": "16", "unit": "mL/h"}
    document["data"]["charted_value"] = {"value": "1", "unit": "mL/min"}
    assert parse_event(document).data.charted_value.unit == "mL/min"  # type: ignore[union-attr]
