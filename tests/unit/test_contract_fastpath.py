"""The append path's native validator gives what the contract's models give, or defers to them.

``parse_for_store`` either accepts a message on the fast path (a ``Validated`` holding the
stored bytes) or hands it to ``parse_event``. Whatever it accepts must be stored byte for
byte as the model path stores it, with the same ids and clocks; whatever it refuses must be
refused with the same errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from ledger.contract import parse_event, wire_json
from ledger.contract.fast import FAST_TYPES, Validated, parse_for_store, stored_json
from ledger.contract.union import INTERNAL_TYPES, PUBLIC_TYPES
from ledger.errors import ContractError
from ledger.store.prepare import same_content
from ledger.store.streams import stream_key
from tests.unit.test_contract_canonical import INTERNAL, LINES, any_event_json, example


def assert_same_as_the_model_path(raw: str | bytes) -> Validated | Any:
    model = parse_event(raw)
    result = parse_for_store(raw)
    assert stored_json(result) == wire_json(model)
    assert (result.event_id, result.type) == (model.event_id, model.type)
    assert (result.occurred_at, result.received_at) == (model.occurred_at, model.received_at)
    assert result.occurred_at.utcoffset() == model.occurred_at.utcoffset()
    assert stream_key(result) == stream_key(model)
    if isinstance(result, Validated):
        assert result.model() == model
        assert same_content(result, model)
    else:
        assert result == model
    return result


def test_the_fast_path_covers_the_telemetry_and_most_producer_types() -> None:
    # Not vacuous: the types that make up most of the traffic take it.
    assert {"infusion.status_reported", "infusion.started", "infusion.rate_changed",
            "alarm.raised", "alarm.acknowledged", "pump.associated"} <= FAST_TYPES
    assert len(FAST_TYPES) >= 25
    assert FAST_TYPES <= PUBLIC_TYPES
    assert not FAST_TYPES & INTERNAL_TYPES


@pytest.mark.parametrize("line", LINES, ids=lambda line: json.loads(line)["type"])
def test_every_example_is_stored_as_the_model_path_stores_it(line: str) -> None:
    result = assert_same_as_the_model_path(line.encode())
    kind = json.loads(line)["type"]
    assert isinstance(result, Validated) == (kind in FAST_TYPES)


@settings(max_examples=300, deadline=None)
@given(any_event_json(ensure_ascii=False))
def test_any_generated_event_is_stored_as_the_model_path_stores_it(raw: str) -> None:
    assert_same_as_the_model_path(raw.encode())


OUTSIDE_THE_SUBSET = {
    "a quantity as a JSON number": ("rate", '{"value": 14.4, "unit": "mL/h"}'),
    "an integer quantity": ("rate", '{"value": 14, "unit": "mL/h"}'),
    "a unit alias": ("dose_rate", '{"value": "5", "unit": "mEq/h"}'),
    "a decimal of 13 characters": ("rate", '{"value": "0.00000000001", "unit": "mL/h"}'),
    "an escaped character": ("rate", '{"value": "5", "unit": "mL/\\u0068"}'),
}


@pytest.mark.parametrize(
    ("field", "quantity"), OUTSIDE_THE_SUBSET.values(), ids=OUTSIDE_THE_SUBSET.keys()
)
def test_what_the_fast_path_does_not_take_the_exact_path_stores_the_same(
    field: str, quantity: str
) -> None:
    document = example()
    document["data"][field] = "@@"
    result = assert_same_as_the_model_path(json.dumps(document).replace('"@@"', quantity))
    assert not isinstance(result, Validated)


def test_nulls_take_the_exact_path_and_defaults_are_spelled_out_either_way() -> None:
    with_null = example("infusion.paused")
    with_null["data"]["infusate_source"] = None
    with_null["actor"] = None
    assert not isinstance(assert_same_as_the_model_path(json.dumps(with_null)), Validated)
    absent = example("infusion.paused")
    absent["data"].pop("infusate_source", None)
    result = assert_same_as_the_model_path(json.dumps(absent))
    assert isinstance(result, Validated)
    assert json.loads(result.wire)["data"]["infusate_source"] == "primary"


def test_an_upper_case_event_id_is_stored_in_lower_case() -> None:
    document = example()
    document["event_id"] = document["event_id"].upper()
    result = assert_same_as_the_model_path(json.dumps(document))
    assert json.loads(stored_json(result))["event_id"] == example()["event_id"].lower()


def _refusal(raw: str | bytes, parse: Any) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        parse(raw)
    return [(error.path, error.code) for error in caught.value.errors]


def _mutated(change: Any) -> str:
    document = example()
    change(document)
    return json.dumps(document)


REFUSED = {
    "not JSON": "{not json",
    "not an object": "[1, 2]",
    "an unknown type": _mutated(lambda d: d.update(type="infusion.exploded")),
    "an internal type": INTERNAL[0],
    "a naive timestamp": _mutated(lambda d: d.update(occurred_at="2026-03-14T08:26:00")),
    "an unknown field": _mutated(lambda d: d.update(colour="blue")),
    "a missing pump id": _mutated(lambda d: d["subject"].pop("pump_id")),
    "a negative rate": _mutated(lambda d: d["data"]["rate"].update(value="-1")),
    "a rate in mg": _mutated(lambda d: d["data"]["rate"].update(unit="mg")),
    "schema version 2": _mutated(lambda d: d.update(schema_version=2)),
    "schema version true": _mutated(lambda d: d.update(schema_version=True)),
    "an empty channel": _mutated(lambda d: d["subject"].update(channel="")),
    "a numeric channel": _mutated(lambda d: d["subject"].update(channel=1)),
}


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
def test_what_the_contract_refuses_is_refused_with_the_same_errors(raw: str) -> None:
    assert _refusal(raw.encode(), parse_for_store) == _refusal(raw.encode(), parse_event)
