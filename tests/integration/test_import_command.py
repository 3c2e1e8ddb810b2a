"""``ledger import FILE``: every line validated, good ones appended, every refusal explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.store.database import ConnectionParams
from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS, wire

pytestmark = pytest.mark.integration


def test_importing_the_example_file_appends_everything_and_a_second_run_appends_nothing(
    database: ConnectionParams,
) -> None:
    lines = [line for line in VALID_EVENTS.read_text().splitlines() if line.strip()]
    first = ledger("import", str(VALID_EVENTS), database=database)
    assert first.code == 0, first.stderr
    assert first.summary == {"appended": len(lines), "duplicates": 0, "conflicts": 0, "rejected": 0}
    second = ledger("import", str(VALID_EVENTS), database=database)
    assert second.code == 0, second.stderr
    assert second.summary == {"appended": 0, "duplicates": len(lines), "conflicts": 0,
                              "rejected": 0}


def test_bad_lines_are_reported_with_line_number_and_field_path_and_the_good_ones_land(
    database: ConnectionParams, tmp_path: Path
) -> None:
    good = wire("infusion.rate_changed")
    wrong_dimension = wire("infusion.rate_changed", data={"new_rate": {"value": "20",
                                                                       "unit": "min"}})
    naive = wire("order.placed", occurred_at="2026-03-14T08:00:00")
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join([
        json.dumps(good), "{not json", json.dumps(wrong_dimension), "", json.dumps(naive),
    ]) + "\n")
    result = ledger("import", str(path), database=database)
    assert result.code == 1
    assert result.summary == {"appended": 1, "duplicates": 0, "conflicts": 0, "rejected": 3}
    assert f"{path}:2: rejected:" in result.stderr
    assert f"{path}:3: rejected: data.new_rate" in result.stderr
    assert f"{path}:5: rejected: occurred_at" in result.stderr


def test_a_conflicting_line_is_counted_apart_from_rejections_and_fails_the_run(
    database: ConnectionParams, tmp_path: Path
) -> None:
    original = wire("alarm.raised")
    conflicting = dict(original, data=dict(original["data"], priority="low"))
    path = tmp_path / "conflict.ndjson"
    path.write_text(json.dumps(original) + "\n" + json.dumps(conflicting) + "\n")
    result = ledger("import", str(path), database=database)
    assert result.code == 1
    assert result.summary == {"appended": 1, "duplicates": 0, "conflicts": 1, "rejected": 0}
    assert f"{path}:2: conflict: event_id {original['event_id']}" in result.stderr


def test_internal_event_types_are_refused_from_files(
    database: ConnectionParams, tmp_path: Path
) -> None:
    internal = Path(VALID_EVENTS.parent / "valid_internal_events.ndjson")
    result = ledger("import", str(internal), database=database)
    assert result.code == 1
    assert result.summary["appended"] == 0
    assert "internal_type_refused" in result.stderr


def test_a_missing_file_is_a_clear_error(database: ConnectionParams, tmp_path: Path) -> None:
    result = ledger("import", str(tmp_path / "nope.ndjson"), database=database)
    assert result.code == 2
    assert "no such file" in result.stderr
