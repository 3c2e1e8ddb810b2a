"""The stored form (wire_dict) and the duplicate/conflict key (content_digest)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.contract import canonical_json, content_digest, parse_event, wire_dict, wire_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contract"
LINES = (FIXTURES / "valid_events.ndjson").read_text(encoding="utf-8").splitlines()
INTERNAL = (FIXTURES / "valid_internal_events.ndjson").read_text(encoding="utf-8").splitlines()
EXAMPLES: dict[str, dict[str, Any]] = {json.loads(line)["type"]: json.loads(line) for line in LINES}


def example(kind: str = "infusion.status_reported") -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[kind])


def digest(document: dict[str, Any] | str) -> bytes:
    raw = document if isinstance(document, str) else json.dumps(document)
    return content_digest(parse_event(raw))


# --- wire_dict -------------------------------------------------------------------------------


@pytest.mark.parametrize("line", LINES + INTERNAL, ids=lambda line: json.loads(line)["type"])
def test_wire_dict_round_trips_every_example(line: str) -> None:
    # Given a parsed example
    event = parse_event(line, allow_internal=True)
    # When its stored form is parsed again (as a mapping and as JSON text)
    stored = wire_dict(event)
    # Then it is the same event, and storing it again changes nothing
    assert parse_event(stored, allow_internal=True) == event
    assert parse_event(json.dumps(stored), allow_internal=True) == event
    assert wire_dict(parse_event(stored, allow_internal=True)) == stored


def test_wire_dict_keeps_decimals_as_strings_exactly_as_written() -> None:
    document = example()
    document["data"]["volume_infused"]["value"] = "14.40"
    stored = wire_dict(parse_event(json.dumps(document).replace('"235.60"', "235.60")))
    assert stored["data"]["volume_infused"] == {"value": "14.40", "unit": "mL"}
    assert stored["data"]["vtbi_remaining"] == {"value": "235.60", "unit": "mL"}


def test_wire_dict_keeps_the_original_offset() -> None:
    document = example()
    document["occurred_at"] = "2026-03-14T09:26:00.5+05:45"
    stored = wire_dict(parse_event(document))
    assert stored["occurred_at"] == "2026-03-14T09:26:00.500000+05:45"


def test_wire_dict_leaves_out_absent_and_null_optional_fields() -> None:
    document = example()
    document.update(received_at=None, actor=None)
    document["subject"]["encounter_id"] = None
    document["data"]["dose_rate"] = None
    stored = wire_dict(parse_event(document))
    assert {"received_at", "actor", "correlation_id"}.isdisjoint(stored)
    assert "encounter_id" not in stored["subject"]
    assert "dose_rate" not in stored["data"]


def test_wire_dict_spells_out_contract_defaults_and_normalises_aliases() -> None:
    document = example("infusion.paused")
    document["data"].pop("infusate_source", None)
    stored = wire_dict(parse_event(document))
    assert stored["data"]["infusate_source"] == "primary"


def test_wire_dict_writes_uuids_in_lower_case() -> None:
    document = example()
    document["event_id"] = document["event_id"].upper()
    assert wire_dict(parse_event(document))["event_id"] == example()["event_id"].lower()


def test_wire_dict_is_json_serialisable_as_is() -> None:
    for line in LINES:
        json.dumps(wire_dict(parse_event(line)), allow_nan=False)


# --- duplicates: equal content, equal digest --------------------------------------------------


def test_the_digest_is_32_bytes_of_sha256() -> None:
    assert len(content_digest(parse_event(LINES[0]))) == 32


def test_decimals_are_compared_by_value() -> None:
    # Given the same rate written "12", 12 and "12.0"
    variants = []
    for literal in ('"12"', "12", '"12.0"', "12.000"):
        document = example()
        document["data"]["rate"]["value"] = "@@"
        variants.append(json.dumps(document).replace('"@@"', literal))
    # Then all four are the same event
    assert len({digest(raw) for raw in variants}) == 1


def test_timestamps_are_compared_by_instant() -> None:
    first, second = example(), example()
    first["occurred_at"] = "2026-03-14T09:26:00-05:00"
    second["occurred_at"] = "2026-03-14T14:26:00.000Z"
    assert digest(first) == digest(second)


def test_received_at_and_the_source_message_id_are_ignored() -> None:
    first, second = example(), example()
    first["received_at"] = "2026-03-14T14:26:00.388Z"
    first["source"]["message_id"] = "MSG-1"
    del second["received_at"]
    second["source"]["message_id"] = "MSG-2-retransmission"
    assert digest(first) == digest(second)


def test_null_and_omitted_optional_fields_are_the_same_content() -> None:
    first, second = example(), example()
    first["actor"] = None
    second.pop("actor", None)
    second["data"]["infusate_source"] = None
    assert digest(first) == digest(second)


def test_unit_aliases_are_the_same_content() -> None:
    first, second = example(), example()
    first["data"]["dose_rate"] = {"value": "5", "unit": "mEq/h"}
    second["data"]["dose_rate"] = {"value": "5", "unit": "meq/h"}
    assert digest(first) == digest(second)


# --- conflicts: any other change, different digest --------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value

    return change


CHANGES = {
    "occurred_at by a microsecond": _set("occurred_at", "2026-03-14T09:26:00.000001-05:00"),
    "source system": _set("source.system", "alaris-gw-4"),
    "source kind": _set("source.kind", "simulator"),
    "channel": _set("subject.channel", "B"),
    "an extra subject id": _set("subject.encounter_id", "ENC-1"),
    "actor": _set("actor", {"id": "RN-0311", "role": "nurse"}),
    "correlation id": _set("correlation_id", "ORD-7781"),
    "corrects_event_id": _set("corrects_event_id", "0195f3a0-6c00-7000-8000-000000000001"),
    "rate value": _set("data.rate.value", "14.5"),
    "rate unit": _set("data.rate.unit", "mL/min"),
    "state": _set("data.state", "paused"),
    "infusate source": _set("data.infusate_source", "secondary"),
    "a dropped optional value": _set("data.time_remaining", None),
    "event id": _set("event_id", "0195f3a0-6c00-7000-8000-000000000999"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_any_other_change_is_a_conflict(change: Callable[[dict[str, Any]], None]) -> None:
    original, changed = example(), example()
    change(changed)
    assert digest(original) != digest(changed)


def test_a_string_that_looks_like_a_number_is_not_normalised() -> None:
    first, second = example("patient.located"), example("patient.located")
    second["data"]["bed"] = "12.0"
    assert digest(first) != digest(second)


# --- properties ------------------------------------------------------------------------------

decimal_literals = st.builds(
    lambda coefficient, places: format(Decimal(coefficient).scaleb(-places), "f"),
    st.integers(min_value=0, max_value=10**12 - 1),
    st.integers(min_value=0, max_value=8),
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
timestamps = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    offsets,
)


def _quantities(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if set(node) == {"value", "unit"}:
            yield node
        for child in node.values():
            yield from _quantities(child)


def _timestamp_holders(node: Any) -> Iterator[tuple[dict[str, Any], str]]:
    if isinstance(node, dict):
        for key, child in node.items():
            if key.endswith(("_at", "_time")) and isinstance(child, str):
                yield node, key
            yield from _timestamp_holders(child)


@st.composite
def raw_events(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """An example with fresh decimals (some as JSON numbers) and timestamps in any offset.

    Returns the JSON text and the decimal literals as written, by their JSON path.
    """
    document = copy.deepcopy(EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))])
    written: dict[str, str] = {}
    numbers: dict[str, str] = {}
    for index, quantity in enumerate(_quantities(document)):
        literal = draw(decimal_literals)
        marker = f"@@{index}@@"
        if draw(st.booleans()):
            quantity["value"], numbers[marker] = marker, literal
        else:
            quantity["value"] = literal
        written[marker] = literal
    for holder, key in _timestamp_holders(document):
        holder[key] = draw(timestamps).isoformat()
    raw = json.dumps(document)
    for marker, literal in numbers.items():
        raw = raw.replace(f'"{marker}"', literal)
    return raw, written


@settings(max_examples=150, deadline=None)
@given(raw_events())
def test_wire_dict_round_trips_for_any_decimals_and_offsets(drawn: tuple[str, Any]) -> None:
    raw, written = drawn
    event = parse_event(raw)
    stored = wire_dict(event)
    # Every decimal is stored exactly as written, string or JSON number alike
    assert sorted(q["value"] for q in _quantities(stored)) == sorted(written.values())
    assert parse_event(stored) == event
    assert parse_event(json.dumps(stored)) == event
    assert wire_dict(parse_event(json.dumps(stored))) == stored
    for (key, value), (_, again) in zip(
        _timestamp_items(json.loads(raw)), _timestamp_items(stored), strict=True
    ):
        assert (
            datetime.fromisoformat(value).utcoffset() == datetime.fromisoformat(again).utcoffset()
        ), key
    assert content_digest(parse_event(stored)) == content_digest(event)


def _timestamp_items(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((key, holder[key]) for holder, key in _timestamp_holders(document))


@settings(max_examples=100, deadline=None)
@given(literal=decimal_literals, zeros=st.integers(0, 3), zone=offsets)
def test_equal_content_has_an_equal_digest_however_it_is_spelled(
    literal: str, zeros: int, zone: timezone
) -> None:
    # Given the same rate and instant spelled differently, with different edge metadata
    padded = literal + ("." if "." not in literal else "") + "0" * zeros if zeros else literal
    if len(Decimal(padded).as_tuple().digits) > 12:
        padded = literal
    first, second = example(), example()
    first["data"]["rate"]["value"] = literal
    second["data"]["rate"]["value"] = "@@"
    moment = datetime.fromisoformat(first["occurred_at"])
    second["occurred_at"] = moment.astimezone(zone).isoformat()
    second["received_at"] = "2030-01-01T00:00:00Z"
    second["source"]["message_id"] = "retransmitted"
    # Then the digests are equal
    assert digest(first) == digest(json.dumps(second).replace('"@@"', padded))


# --- wire_json: the stored bytes -------------------------------------------------------------


@pytest.mark.parametrize("line", LINES + INTERNAL, ids=lambda line: json.loads(line)["type"])
def test_wire_json_is_the_canonical_json_of_wire_dict_for_every_example(line: str) -> None:
    # The hash chains are computed over these bytes: the direct rendering must not differ
    # from the documented definition by a single byte.
    event = parse_event(line, allow_internal=True)
    assert wire_json(event) == canonical_json(wire_dict(event))


texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
)


@st.composite
def any_event_json(draw: st.DrawFn, ensure_ascii: bool = True) -> str:
    """A generated event (``raw_events``) with any Unicode as its source system and any
    microsecond in ``occurred_at``, as JSON text (non-ASCII escaped or not)."""
    raw, _ = draw(raw_events())
    document = json.loads(raw, parse_float=Decimal)
    document["source"]["system"] = draw(texts)  # any Unicode, escapes and all
    moment = datetime.fromisoformat(document["occurred_at"])
    document["occurred_at"] = moment.replace(microsecond=draw(st.integers(0, 999_999))).isoformat()
    return json.dumps(document, default=lambda d: format(d, "f"), ensure_ascii=ensure_ascii)


@settings(max_examples=200, deadline=None)
@given(any_event_json())
def test_wire_json_is_the_canonical_json_of_wire_dict_for_any_event(raw: str) -> None:
    event = parse_event(raw)
    assert wire_json(event) == canonical_json(wire_dict(event))
    assert json.loads(wire_json(event)) == wire_dict(event)
