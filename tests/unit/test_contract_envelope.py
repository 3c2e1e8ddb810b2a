"""The envelope: timestamps, versions, unknown fields, internal types and malformed input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ledger.contract import parse_event
from ledger.errors import ContractError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contract"
EXAMPLES: dict[str, dict[str, Any]] = {
    json.loads(line)["type"]: json.loads(line)
    for name in ("valid_events.ndjson", "valid_internal_events.ndjson")
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()
}


def example(kind: str = "infusion.started") -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[kind])


def errors(raw: bytes | str | dict[str, Any], **options: bool) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        parse_event(raw, **options)
    return [(error.path, error.code) for error in caught.value.errors]


# --- timestamps ------------------------------------------------------------------------------


def test_a_naive_timestamp_is_rejected() -> None:
    document = example()
    document["occurred_at"] = "2026-03-14T08:26:00"
    assert errors(json.dumps(document)) == [("occurred_at", "naive_timestamp")]


def test_a_naive_datetime_object_is_rejected_too() -> None:
    document = example()
    document["occurred_at"] = datetime(2026, 3, 14, 8, 26)
    assert errors(document) == [("occurred_at", "naive_timestamp")]


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("received_at", None),
        ("observed_at", "documentation.validated"),
        ("start_at", "order.placed"),
        ("new_time", "pump.clock_changed"),
        ("effective_at", "order.held"),
    ],
)
def test_timestamps_in_data_need_an_offset_as_well(field: str, where: str | None) -> None:
    document = example(where or "infusion.started")
    target = document if where is None else document["data"]
    target[field] = "2026-03-14T08:26:00.5"
    path = field if where is None else f"data.{field}"
    assert errors(document) == [(path, "naive_timestamp")]


def test_the_sender_offset_is_kept() -> None:
    document = example()
    document["occurred_at"] = "2026-03-14T08:26:00.250+05:30"
    occurred = parse_event(document).occurred_at
    assert occurred.utcoffset() == timedelta(hours=5, minutes=30)
    assert occurred == datetime(2026, 3, 14, 2, 56, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2026-03-14T08:26:00Z", "2026-03-14t08:26:00z", "2026-03-14 08:26:00+00:00"]
)
def test_rfc_3339_spellings_are_accepted(text: str) -> None:
    document = example()
    document["occurred_at"] = text
    assert parse_event(document).occurred_at == datetime(2026, 3, 14, 8, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["1773476760", 1773476760, "2026-03-14", "2026-03-14T08:26:00+0100", "yesterday"]
)
def test_anything_but_an_rfc_3339_timestamp_is_rejected(value: object) -> None:
    document = example()
    document["occurred_at"] = value
    assert errors(document) == [("occurred_at", "invalid_timestamp")]


def test_an_impossible_date_is_rejected() -> None:
    document = example()
    document["occurred_at"] = "2026-02-30T08:00:00Z"
    assert [path for path, _ in errors(document)] == ["occurred_at"]


# --- identity and version --------------------------------------------------------------------


def test_any_uuid_version_is_an_event_id_and_it_is_read_case_insensitively() -> None:
    document = example()
    document["event_id"] = "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"  # a version 1 UUID
    assert str(parse_event(document).event_id) == "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


def test_an_event_id_that_is_not_a_uuid_is_rejected() -> None:
    document = example()
    document["event_id"] = "evt-1"
    assert errors(document) == [("event_id", "uuid_parsing")]


@pytest.mark.parametrize("version", [0, 2])
def test_a_schema_version_other_than_1_is_unsupported(version: int) -> None:
    document = example()
    document["schema_version"] = version
    assert errors(document) == [("schema_version", "unsupported_schema_version")]


@pytest.mark.parametrize("version", ['"1"', "1.0", "true"])
def test_the_schema_version_must_be_the_integer_1(version: str) -> None:
    document = example()
    document["schema_version"] = "@@"
    raw = json.dumps(document).replace('"@@"', version)
    assert errors(raw) == [("schema_version", "int_type")]


# --- unknown and misplaced fields ------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ((), "dose_units"),
        (("data",), "data.dose_units"),
        (("source",), "source.dose_units"),
        (("subject",), "subject.dose_units"),
        (("data", "rate"), "data.rate.dose_units"),
    ],
)
def test_an_extra_field_is_rejected_wherever_it_is(where: tuple[str, ...], path: str) -> None:
    document = example()
    target = document
    for key in where:
        target = target[key]
    target["dose_units"] = "x"
    assert errors(document) == [(path, "extra_forbidden")]


def test_data_of_a_type_without_fields_must_be_empty() -> None:
    document = example("alarm.cleared")
    document["data"] = {"note": "x"}
    assert errors(document) == [("data.note", "extra_forbidden")]


def test_source_kind_and_actor_role_are_enums() -> None:
    document = example()
    document["source"]["kind"] = "gateway"
    document["actor"] = {"id": "RN-1", "role": "doctor"}
    assert errors(document) == [("source.kind", "literal_error"), ("actor.role", "literal_error")]


def test_every_problem_is_reported_at_once() -> None:
    document = example()
    del document["subject"]["pump_id"]
    document["occurred_at"] = "2026-03-14T08:26:00"
    document["data"]["rate"]["unit"] = "min"
    assert sorted(errors(document)) == [
        ("data.rate.unit", "wrong_dimension"),
        ("occurred_at", "naive_timestamp"),
        ("subject.pump_id", "missing"),
    ]


def test_every_error_has_a_human_readable_message() -> None:
    document = example()
    document["data"]["rate"]["unit"] = "min"
    with pytest.raises(ContractError) as caught:
        parse_event(document)
    assert "duration" in caught.value.errors[0].message
    assert caught.value.code == "wrong_dimension"


# --- types -----------------------------------------------------------------------------------


def test_an_unknown_type_is_rejected() -> None:
    document = example()
    document["type"] = "infusion.exploded"
    assert errors(document) == [("type", "unknown_type")]


def test_a_missing_type_is_reported_as_missing() -> None:
    document = example()
    del document["type"]
    assert errors(document) == [("type", "missing")]


@pytest.mark.parametrize("kind", ["discrepancy.reviewed", "access.recorded", "access.sealed"])
def test_internal_types_are_refused_by_default(kind: str) -> None:
    raw = json.dumps(example(kind))
    assert errors(raw) == [("type", "internal_type_refused")]
    assert errors(raw.encode()) == [("type", "internal_type_refused")]
    assert errors(example(kind)) == [("type", "internal_type_refused")]


def test_internal_types_are_refused_before_anything_else_is_checked() -> None:
    assert errors({"type": "access.recorded"}) == [("type", "internal_type_refused")]


def test_internal_types_are_accepted_when_the_ledger_appends_them() -> None:
    assert parse_event(example("access.recorded"), allow_internal=True).type == "access.recorded"


# --- malformed input -------------------------------------------------------------------------


def test_not_json_is_reported_with_its_position() -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(b'{"type": "infusion.started",\n "data": }')
    (error,) = caught.value.errors
    assert error.code == "invalid_json"
    assert "line 2 column 10" in error.message


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe{}", b'{"value": NaN}', b'{"value": Infinity}', b"[" * 100_000]
)
def test_malformed_bytes_are_invalid_json(raw: bytes) -> None:
    assert errors(raw) == [("", "invalid_json")]


@pytest.mark.parametrize("raw", [b"[]", b'"event"', b"42", b"null"])
def test_json_that_is_not_an_object_is_refused(raw: bytes) -> None:
    assert errors(raw) == [("", "not_an_object")]


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_strings_with_nul_or_lone_surrogates_are_refused(escape: str) -> None:
    document = example()
    document["subject"]["channel"] = "@@"
    raw = json.dumps(document).replace("@@", f"A{escape}")
    assert errors(raw) == [("subject.channel", "invalid_string")]


def test_escaped_text_that_is_valid_is_accepted() -> None:
    document = example("patient.located")
    document["data"]["bed"] = "Zimmer 12 \u00fc \U0001f6cf"
    raw = json.dumps(document, ensure_ascii=True)
    assert parse_event(raw).data.bed == "Zimmer 12 \u00fc \U0001f6cf"  # type: ignore[union-attr]


def test_text_holding_a_raw_unpaired_surrogate_is_invalid() -> None:
    raw = json.dumps(example()).replace('"A"', '"A\ud800"')
    assert errors(raw) == [("", "invalid_json")]


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_bytes_text_and_mappings_validate_to_the_same_event(kind: str) -> None:
    # pydantic's JSON parser (bytes and text) and the exact standard-library path (mappings,
    # JSON numbers) must agree on every valid event
    document = example(kind)
    raw = json.dumps(document)
    from_bytes = parse_event(raw.encode(), allow_internal=True)
    assert from_bytes == parse_event(raw, allow_internal=True)
    assert from_bytes == parse_event(document, allow_internal=True)


def test_a_datetime_whose_offset_rfc_3339_cannot_write_is_rejected() -> None:
    document = example()
    document["occurred_at"] = datetime(2026, 3, 14, 8, 26, tzinfo=timezone(timedelta(seconds=30)))
    assert errors(document) == [("occurred_at", "invalid_timestamp")]
