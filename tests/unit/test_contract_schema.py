"""The checked-in JSON Schema (docs/events.schema.json) is what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.contract import PUBLIC_TYPES
from ledger.contract.decimals import DECIMAL_PATTERN
from ledger.contract.schema import REGENERATE, SCHEMA_ID, build_schema, render_schema

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "events.schema.json"


def test_the_checked_in_schema_matches_the_models() -> None:
    # Given the schema file producers build against, and the one the models generate now
    checked_in = CHECKED_IN.read_text(encoding="utf-8")
    # Then they are identical, or the contract changed without its published schema
    assert checked_in == render_schema(), (
        f"docs/events.schema.json drifted from ledger.contract; regenerate it with: {REGENERATE}"
    )


def test_the_schema_is_identified_and_described() -> None:
    schema = build_schema()
    assert schema["$id"] == SCHEMA_ID == "https://infusion-ledger.example/schemas/events.v1.json"
    assert schema["title"] and schema["description"]
    assert schema["$schema"].endswith("2020-12/schema")


def test_the_schema_covers_every_producer_type_and_no_internal_one() -> None:
    mapping = build_schema()["discriminator"]["mapping"]
    assert set(mapping) == PUBLIC_TYPES


def test_decimals_appear_as_strings_with_a_pattern() -> None:
    flow = build_schema()["$defs"]["Flow"]["properties"]
    assert flow["value"]["type"] == "string"
    assert flow["value"]["pattern"] == DECIMAL_PATTERN


def test_each_quantity_field_lists_only_the_units_of_its_dimension() -> None:
    defs = build_schema()["$defs"]
    assert defs["Flow"]["properties"]["unit"]["enum"] == ["mL/h", "mL/min"]
    assert "min" in defs["Duration"]["properties"]["unit"]["enum"]
    assert "min" not in defs["Flow"]["properties"]["unit"]["enum"]


def test_each_type_shows_the_subject_ids_it_requires() -> None:
    defs = build_schema()["$defs"]
    subject_ref = defs["InfusionStarted"]["properties"]["subject"]["$ref"].split("/")[-1]
    assert set(defs[subject_ref]["required"]) == {"pump_id", "channel"}


def test_the_schema_is_valid_json_with_a_trailing_newline() -> None:
    text = render_schema()
    assert text.endswith("}\n")
    json.loads(text)
