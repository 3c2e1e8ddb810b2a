"""Every line the simulator emits satisfies the v1 contract, except the deliberately
malformed ones, which the contract refuses; Kafka keys follow EVENTS.md "Transport"."""

from __future__ import annotations

import contextlib
import json
from collections import Counter

import pytest

from ledger.contract import parse_event
from ledger.errors import ContractError
from simulator import MemorySink, SimulationConfig, SimulationResult, simulate

PUMP_KEYED = ("program.", "infusion.", "ders.", "alarm.", "pump.")


@pytest.fixture(scope="module")
def run() -> tuple[MemorySink, SimulationResult]:
    config = SimulationConfig(seed=21, hours=4, error_multiplier=4.0).resized(
        units=4, beds=60, pumps=120)
    config = config.model_copy(update={"errors": config.errors.model_copy(
        update={"malformed": 0.004, "duplicate_delivery": 0.004})})
    sink = MemorySink()
    return sink, simulate(config, sink)


def test_every_line_validates_except_the_malformed_ones(
    run: tuple[MemorySink, SimulationResult],
) -> None:
    sink, result = run
    malformed_ids = {line["event_id"] for line in result.truth["malformed"]["lines"]}
    refused = 0
    types: Counter[str] = Counter()
    for _key, value in sink.messages:
        try:
            event = parse_event(value)
        except ContractError:
            refused += 1
            with contextlib.suppress(json.JSONDecodeError):  # the truncated-JSON kind
                assert json.loads(value)["event_id"] in malformed_ids
            continue
        types[event.type if isinstance(event.type, str) else str(event.type)] += 1
    assert refused == result.truth["malformed"]["count"] > 0
    assert set(result.truth["malformed"]["by_kind"]) == {
        "bad_json", "naive_timestamp", "wrong_unit_dimension", "missing_required_field"}
    assert len(types) >= 25, sorted(types)


def test_kafka_keys_follow_the_transport_rules(run: tuple[MemorySink, SimulationResult]) -> None:
    sink, _result = run
    checked = 0
    for key, value in sink.messages:
        try:
            event = json.loads(value)
            subject, kind = event["subject"], event["type"]
        except (json.JSONDecodeError, KeyError):
            continue
        if kind.startswith(("order.", "documentation.")):
            assert key == subject["order_id"]
        elif kind in ("bcma.scan_recorded", "patient.located"):
            assert key == subject["patient_id"]
        else:
            assert kind.startswith(PUMP_KEYED)
            assert key == subject["pump_id"]
        checked += 1
    assert checked > 1_000


def test_duplicates_repeat_the_same_event_id_and_content(
    run: tuple[MemorySink, SimulationResult],
) -> None:
    sink, result = run
    duplicated = set(result.truth["duplicates"]["event_ids"])
    copies: dict[str, list[dict[str, object]]] = {}
    for _key, value in sink.messages:
        try:
            event = json.loads(value)
        except json.JSONDecodeError:
            continue
        if event.get("event_id") in duplicated:
            copies.setdefault(event["event_id"], []).append(event)
    assert duplicated and set(copies) == duplicated
    for versions in copies.values():
        assert len(versions) == 2
        first, second = ({k: v for k, v in e.items() if k not in ("received_at", "source")}
                         for e in versions)
        assert first == second
        assert versions[0]["received_at"] != versions[1]["received_at"]


def test_quantities_are_decimal_strings_and_timestamps_carry_an_offset(
    run: tuple[MemorySink, SimulationResult],
) -> None:
    sink, _result = run
    seen = 0
    for _key, value in sink.messages[:20_000]:
        try:
            event = json.loads(value)
        except json.JSONDecodeError:
            continue
        if "occurred_at" not in event or len(event["occurred_at"]) < 24:
            continue  # a malformed copy
        assert event["occurred_at"].endswith(("Z", "-05:00"))
        for field in event["data"].values():
            if isinstance(field, dict) and "unit" in field:
                assert isinstance(field["value"], str)
                assert "e" not in field["value"].lower()
                seen += 1
    assert seen > 1_000
