"""Incident replay: deterministic, equal to the projections, as-of aware, and verifiable."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from ledger.store.database import ConnectionParams
from ledger.store.merkle import verify_inclusion
from projections import registry
from projections.replay.engine import Replay, load_records
from projections.replay.selection import select
from projections.runtime.rebuild import rebuild
from tests.support.cli import ledger
from tests.support.events import VALID_EVENTS

pytestmark = pytest.mark.integration


@pytest.fixture
def story(database: ConnectionParams) -> ConnectionParams:
    assert ledger("import", str(VALID_EVENTS), database=database).code == 0
    assert ledger("project", "--once", database=database).code == 0
    assert ledger("checkpoint", "create", database=database).code == 0
    return database


def test_the_same_selection_gives_byte_identical_json_before_and_after_a_rebuild(
    story: ConnectionParams,
) -> None:
    first = ledger("replay", "--patient", "MRN-100234", "--format", "json", database=story)
    second = ledger("replay", "--patient", "MRN-100234", "--format", "json", database=story)
    assert first.code == 0, first.stderr
    assert first.stdout == second.stdout
    for projection in registry.build():
        rebuild(story.conninfo, projection)
    third = ledger("replay", "--patient", "MRN-100234", "--format", "json", database=story)
    assert third.stdout == first.stdout
    document = json.loads(first.stdout)
    assert document["events"] == len(document["timeline"]) > 30
    kinds = [frame["type"] for frame in document["timeline"]]
    assert kinds.index("order.placed") < kinds.index("program.confirmed") < \
        kinds.index("infusion.started") < kinds.index("alarm.raised")


def test_the_replayed_final_state_equals_what_the_projection_stored(
    story: ConnectionParams,
) -> None:
    with psycopg.connect(story.conninfo, row_factory=dict_row) as conn:
        episodes = conn.execute("SELECT * FROM infusion_state").fetchall()
        for row in episodes:
            selection = select(conn, episode=str(row["episode_id"]))
            replay = Replay()
            replay.frames(load_records(conn, selection.streams))
            folded = replay.episodes[str(row["episode_id"])]
            assert folded["status"] == row["status"]
            assert (folded["current_rate"] or {}).get("value") == (
                None if row["current_rate"] is None else format(row["current_rate"], "f"))
            assert (folded["volume_infused"] or {}).get("value") == (
                None if row["volume_infused"] is None else format(row["volume_infused"], "f"))


def test_the_text_timeline_shows_ordered_programmed_and_running_rates_and_the_alarm(
    story: ConnectionParams,
) -> None:
    result = ledger("replay", "--pump", "PUMP-0042", "--channel", "A", database=story)
    assert result.code == 0, result.stderr
    started = next(line for line in result.stdout.splitlines() if "infusion.started" in line)
    assert "ordered    14.4 mL/h" in started and "running    14.4 mL/h" in started
    assert "ALARM MDC_EVT_FLUID_LINE_OCCL (high)" in result.stdout


def test_as_of_a_moment_shows_the_state_by_both_clocks(story: ConnectionParams) -> None:
    result = ledger("replay", "--patient", "MRN-100234", "--format", "json",
                    "--at", "2026-03-14T09:41:00-05:00", database=story)
    as_of = json.loads(result.stdout)["as_of"]
    (channel,) = [c for c in as_of["occurred"]["state"]["channels"].values()]
    assert channel["status"] == "paused"  # the occlusion pause, before the resume
    assert as_of["recorded"]["state"] is None  # nothing was recorded by then (imported later)
    assert as_of["late_data"] is True


def test_the_incident_package_lets_an_outsider_recompute_chains_and_inclusion(
    story: ConnectionParams, tmp_path: Path
) -> None:
    import hashlib

    result = ledger("replay", "--order", "ORD-7781", "--export", str(tmp_path / "pkg"),
                    "--format", "html", "--out", str(tmp_path / "report.html"), database=story)
    assert result.code == 0, result.stderr
    assert "<table>" in (tmp_path / "report.html").read_text()
    lines = [json.loads(x) for x in (tmp_path / "pkg" / "events.ndjson").read_text().splitlines()]
    for line in lines:
        recomputed = hashlib.sha256(bytes.fromhex(line["previous_hash"]) +
                                    line["state"].encode()).hexdigest()
        assert recomputed == line["hash"]
    proofs = json.loads((tmp_path / "pkg" / "proofs.json").read_text())
    for stream, proof in proofs.items():
        last = [x for x in lines if x["stream"] == stream][-1]
        assert verify_inclusion(bytes.fromhex(last["hash"]), proof["leaf_index"],
                                proof["tree_size"], [bytes.fromhex(h) for h in
                                                     proof["audit_path"]],
                                bytes.fromhex(proof["merkle_root"]))


def test_every_replay_is_recorded_in_the_ledger_as_an_access(story: ConnectionParams) -> None:
    ledger("replay", "--patient", "MRN-100234", "--actor", "SAFETY-7", database=story)
    with psycopg.connect(story.conninfo) as conn:
        rows = conn.execute("SELECT state FROM ledger_events WHERE topic = 'access.recorded'"
                            ).fetchall()
    (audit,) = [json.loads(bytes(r[0]))["event"] for r in rows]
    assert audit["data"]["key_id"] == "cli:SAFETY-7"
    assert audit["data"]["patient_ids"] == ["MRN-100234"]


def test_from_compares_instants_whatever_offset_the_caller_writes(
    story: ConnectionParams,
) -> None:
    local = ledger("replay", "--patient", "MRN-100234", "--format", "json",
                   "--from", "2026-03-14T09:40:00-05:00", database=story)
    utc = ledger("replay", "--patient", "MRN-100234", "--format", "json",
                 "--from", "2026-03-14T14:40:00Z", database=story)
    assert local.code == utc.code == 0, local.stderr + utc.stderr
    assert local.stdout == utc.stdout
    timeline = json.loads(utc.stdout)["timeline"]
    everything = json.loads(ledger("replay", "--patient", "MRN-100234", "--format", "json",
                                   database=story).stdout)["timeline"]
    assert 0 < len(timeline) < len(everything)
    assert timeline == everything[-len(timeline):]
