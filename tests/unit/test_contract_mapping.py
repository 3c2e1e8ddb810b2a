"""``parse_mapping``: an event built in code, validated by the JSON fast path, with exactly
``parse_event``'s result and errors for the same mapping."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings

from ledger.contract import parse_event, parse_mapping
from ledger.errors import ContractError
from tests.unit.test_contract_canonical import INTERNAL, LINES, any_event_json, example


def errors_of(call: Any, document: Any, **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        call(document, **options)
    return sorted((e.path, e.code) for e in caught.value.errors)


@pytest.mark.parametrize("line", LINES + INTERNAL)
def test_every_example_gives_the_mapping_path_s_event(line: str) -> None:
    document = json.loads(line)  # integers and strings only: what code builds
    assert parse_mapping(document, allow_internal=True) == parse_event(
        document, allow_internal=True)


@settings(max_examples=200, deadline=None)
@given(any_event_json())
def test_any_generated_event_gives_the_mapping_path_s_event(raw: str) -> None:
    document = json.loads(raw, parse_float=Decimal)  # decimals: the exact path, as a mapping
    assert parse_mapping(document) == parse_event(document)


def test_a_python_float_is_refused_as_the_mapping_path_refuses_it() -> None:
    document = example("infusion.started")
    document["data"]["rate"]["value"] = 14.4  # JSON would carry it as a number
    assert errors_of(parse_mapping, document) == errors_of(parse_event, document)


@pytest.mark.parametrize("bad", ["with\x00nul", "lone \ud800 surrogate"])
def test_nul_and_lone_surrogates_are_refused_with_the_mapping_path_s_errors(bad: str) -> None:
    document = example()
    document["source"]["system"] = bad
    assert errors_of(parse_mapping, document) == errors_of(parse_event, document)
    assert ("source.system", "invalid_string") in errors_of(parse_mapping, document)


def test_internal_types_are_refused_unless_allowed() -> None:
    document = json.loads(INTERNAL[0])
    assert errors_of(parse_mapping, document) == errors_of(parse_event, document)
    assert parse_mapping(document, allow_internal=True).type == document["type"]
