"""The read models on real PostgreSQL: Given events, Then rows; fail-stop; rebuild; exactly-once."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.streams import stream_key
from projections import registry
from projections.documentation import links
from projections.runtime import catalog
from projections.runtime.base import UnknownEventType
from projections.runtime.parallel import build_in_parallel, groups
from projections.runtime.rebuild import (
    build_together,
    building_generation,
    rebuild,
    switch_built,
    table_checksums,
)
from projections.runtime.runner import ProjectionRunner
from tests.support.events import VALID_EVENTS, wire

pytestmark = pytest.mark.integration

HEPARIN = {"code": "235473", "name": "heparin 25,000 units in 250 mL D5W"}


def story() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VALID_EVENTS.read_text().splitlines() if line.strip()]


def append(params: ConnectionParams, events: list[dict[str, Any]]) -> None:
    with EventStore(params) as store:
        store.append([Incoming(parse_event(json.dumps(e)), Origin("file", f"t:{i}"))
                      for i, e in enumerate(events)])


def project(params: ConnectionParams, batch_size: int = 2000) -> None:
    for projection in registry.build():
        with ProjectionRunner(params.conninfo, projection, batch_size=batch_size) as runner:
            runner.run_until_caught_up()


def rows(params: ConnectionParams, query: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(params.conninfo, row_factory=dict_row) as conn:
        return list(conn.execute(query.encode(), args).fetchall())


@pytest.fixture
def projected(database: ConnectionParams) -> Iterator[ConnectionParams]:
    append(database, story())
    project(database)
    yield database


def test_the_heparin_story_gives_an_episode_with_its_order_location_and_running_values(
    projected: ConnectionParams,
) -> None:
    (first, *_) = rows(projected, "SELECT * FROM infusion_state ORDER BY first_position")
    assert first["medication_name"] == HEPARIN["name"]
    assert (first["linked_order_id"], first["order_link_resolved"]) == ("ORD-7781", "subject")
    assert (first["unit"], first["bed"]) == ("MICU", "12")
    assert str(first["ordered_dose"]) == "20" and first["ordered_dose_unit"] == "[iU]/kg/h"
    assert first["program_mode"] == "auto" and first["library_mode"] == "library"
    assert first["status"] == "stopped" and first["active"] is False
    timeline = rows(projected, "SELECT type, state_after->>'status' AS status FROM"
                               " infusion_timeline WHERE episode_id = %s ORDER BY seq",
                    first["episode_id"])
    kinds = [t["type"] for t in timeline]
    assert kinds[:3] == ["program.auto_requested", "program.auto_rejected",
                         "program.auto_accepted"]
    assert kinds.index("program.confirmed") < kinds.index("infusion.started") < \
        kinds.index("infusion.paused") < kinds.index("infusion.resumed")
    assert timeline[kinds.index("infusion.paused")]["status"] == "paused"


def test_an_alarm_row_records_its_lifecycle_and_the_infusion_it_hit(
    projected: ConnectionParams,
) -> None:
    (alarm,) = rows(projected, "SELECT * FROM alarms")
    assert alarm["raised_at"] < alarm["acknowledged_at"] <= alarm["cleared_at"]
    assert alarm["seconds_to_acknowledge"] > 0
    assert alarm["episode_id"] is not None


def test_ders_compliance_counts_library_use_against_the_95_percent_target(
    projected: ConnectionParams,
) -> None:
    (day,) = rows(projected, "SELECT * FROM ders_compliance WHERE programs_started > 0")
    assert (day["programs_started"], day["library_starts"]) == (1, 1)
    assert day["meets_target"] is True and day["overrides"] == 1


def _unlinked_program(patient: str, pump: str) -> list[dict[str, Any]]:
    subject = {"facility_id": "north-campus", "pump_id": pump, "channel": "A",
               "patient_id": None, "order_id": None}
    return [
        wire("program.confirmed", subject=subject,
             occurred_at="2026-03-14T09:00:00Z",
             data={"request_id": None, "mode": "manual"}),
        wire("pump.associated", subject=dict(subject, patient_id=patient),
             occurred_at="2026-03-14T09:05:00Z"),
    ]


def _order(order: str, patient: str) -> dict[str, Any]:
    return wire("order.placed", occurred_at="2026-03-14T08:00:00Z",
                subject={"facility_id": "north-campus", "patient_id": patient, "order_id": order})


def test_a_late_association_links_the_episode_to_the_patients_only_matching_order(
    database: ConnectionParams,
) -> None:
    append(database, [_order("ORD-A", "MRN-5"), *_unlinked_program("MRN-5", "PUMP-9")])
    project(database)
    (episode,) = rows(database, "SELECT * FROM infusion_state WHERE pump_id = 'PUMP-9'")
    assert episode["patient_id"] == "MRN-5"
    assert (episode["linked_order_id"], episode["order_link_resolved"]) == \
        ("ORD-A", "association_match")


def test_two_matching_orders_make_the_link_ambiguous_rather_than_a_guess(
    database: ConnectionParams,
) -> None:
    append(database, [_order("ORD-A", "MRN-6"), _order("ORD-B", "MRN-6"),
                      *_unlinked_program("MRN-6", "PUMP-8")])
    project(database)
    (episode,) = rows(database, "SELECT * FROM infusion_state WHERE pump_id = 'PUMP-8'")
    assert episode["linked_order_id"] is None
    assert episode["order_link_resolved"] == "ambiguous"


def test_an_unknown_event_type_stops_the_projection_with_its_position_unchanged(
    projected: ConnectionParams,
) -> None:
    with psycopg.connect(projected.conninfo, autocommit=True) as conn:
        before = catalog.position(conn, "infusions", 1)
        template = conn.execute("SELECT * FROM ledger_events ORDER BY notification_id DESC"
                                " LIMIT 1").fetchone()
        assert template is not None
        conn.execute(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state,"
            " event_id, stream, occurred_at, recorded_at, hash) SELECT originator_id,"
            " originator_version + 1, 'infusion.teleported', state, gen_random_uuid(), stream,"
            " occurred_at, recorded_at, hash FROM ledger_events WHERE notification_id = %s",
            (template[4],))
    with ProjectionRunner(projected.conninfo, registry.build(["infusions"])[0]) as runner, \
            pytest.raises(UnknownEventType, match=r"infusion\.teleported"):
        runner.run_until_caught_up()
    with psycopg.connect(projected.conninfo) as conn:
        assert catalog.position(conn, "infusions", 1) == before
        (status,) = [s for s in catalog.statuses(conn) if s["projection"] == "infusions"]
    assert status["status"] == "failed" and "infusion.teleported" in status["error"]
    assert status["failed_at_position"] == before + 1 or status["failed_at_position"] > before


def _many_events(seed: int) -> list[dict[str, Any]]:
    generator = random.Random(seed)
    events = story()
    for n in range(60):
        pump = f"PUMP-{generator.randrange(4)}"
        subject = {"facility_id": "north-campus", "pump_id": pump, "channel": "A",
                   "patient_id": "MRN-100234", "order_id": "ORD-7781"}
        kind = generator.choice(["infusion.status_reported", "infusion.rate_changed",
                                 "program.confirmed", "infusion.started", "infusion.stopped"])
        events.append(wire(kind, subject=subject,
                           occurred_at=f"2026-03-14T10:{n:02d}:00Z"))
    return events


def test_a_rebuild_equals_the_incrementally_built_tables_even_after_a_crash_mid_rebuild(
    database: ConnectionParams,
) -> None:
    append(database, _many_events(1))
    project(database, batch_size=7)  # incrementally, in many small batches
    incremental = {p.name: table_checksums(database.conninfo, p) for p in registry.build()}
    for projection in registry.build():
        with psycopg.connect(database.conninfo, autocommit=True) as conn:
            generation, resumed = building_generation(conn, projection)
        assert not resumed
        with ProjectionRunner(database.conninfo, projection, generation=generation,
                              batch_size=5, status_key="crashing-rebuild") as runner:
            runner.step()
            runner.step()  # ... and the process dies here
        result = rebuild(database.conninfo, projection)
        assert result.resumed and result.new_generation == generation
        assert table_checksums(database.conninfo, projection) == incremental[projection.name]
    assert rows(database, "SELECT count(*) AS n FROM infusion_state")[0]["n"] > 0


def test_every_projection_rebuilt_together_in_two_processes_equals_the_incremental_tables(
    database: ConnectionParams,
) -> None:
    """`ledger rebuild --all --jobs 2`: one read per process, views switched afterwards; one
    projection resumes a crashed building generation while the others start from zero."""
    append(database, _many_events(3))
    project(database, batch_size=7)
    projections = registry.build()
    incremental = {p.name: table_checksums(database.conninfo, p) for p in projections}
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        generation, _ = building_generation(conn, projections[0])
    with ProjectionRunner(database.conninfo, projections[0], generation=generation,
                          batch_size=5, status_key="crashing-rebuild") as runner:
        runner.step()
    built = build_in_parallel(database.conninfo, projections, jobs=2, batch_size=11)
    results = {r.projection: r for r in switch_built(database.conninfo, projections, built)}
    assert results[projections[0].name].resumed
    assert results[projections[0].name].new_generation == generation
    assert not any(r.resumed for name, r in results.items() if name != projections[0].name)
    for projection in projections:
        assert table_checksums(database.conninfo, projection) == incremental[projection.name]


def test_a_rebuild_written_in_several_chunks_equals_the_incremental_tables_and_carries_on(
    database: ConnectionParams, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rebuild's bulk path folds many pages per write (chunks): the tables, stream states
    and position it leaves must be those of the incremental path, so the live runner carries
    on from them as if it had built them itself."""
    # Every batch takes the large-batch path of the documentation links (GIN lists merged).
    monkeypatch.setattr(links, "_MERGE_PENDING", 0)
    events = _many_events(5)
    append(database, events[:50])
    project(database, batch_size=3)
    projections = registry.build()
    incremental = {p.name: table_checksums(database.conninfo, p) for p in projections}
    # Pages of 4 events, a write every 10 or more: chunks span pages and end mid-ledger.
    built = build_together(database.conninfo, projections, batch_size=4, chunk_events=10)
    switch_built(database.conninfo, projections, built)
    assert {p.name: table_checksums(database.conninfo, p) for p in projections} == incremental
    append(database, events[50:])
    project(database, batch_size=3)  # the live runner continues on the rebuilt generation
    carried_on = {p.name: table_checksums(database.conninfo, p) for p in projections}
    built = build_together(database.conninfo, projections, batch_size=1000)  # one chunk
    switch_built(database.conninfo, projections, built)
    assert {p.name: table_checksums(database.conninfo, p) for p in projections} == carried_on


def test_a_parallel_rebuild_on_a_ledger_never_projected_creates_views_in_dependency_order(
    database: ConnectionParams,
) -> None:
    """On a new database the workers must not create a view before the one it reads (the
    alarms view reads infusion_state, built by another process)."""
    append(database, _many_events(4))
    projections = registry.build()
    built = build_in_parallel(database.conninfo, projections, jobs=2, batch_size=13)
    switch_built(database.conninfo, projections, built)
    rebuilt = {p.name: table_checksums(database.conninfo, p) for p in projections}
    project(database)  # nothing left to do: the rebuilt generations are the active ones
    assert {p.name: table_checksums(database.conninfo, p) for p in projections} == rebuilt
    assert rows(database, "SELECT count(*) AS n FROM alarms")[0]["n"] >= 0
    assert rows(database, "SELECT count(*) AS n FROM infusion_state")[0]["n"] > 0


def test_rebuild_groups_balance_the_projections_cost_across_processes() -> None:
    parts = groups(registry.build(), 2)
    assert len(parts) == 2
    assert sorted(p.name for part in parts for p in part) == sorted(registry.FACTORIES)
    costs = [sum(p.rebuild_cost for p in part) for part in parts]
    assert max(costs) - min(costs) <= max(p.rebuild_cost for p in registry.build())


def _without_positions(params: ConnectionParams) -> dict[str, list[str]]:
    """Rows without the columns that depend on arrival: notification ids, the ledger clock."""
    drop = {"first_position", "last_position", "notification_id", "raised_position",
            "last_recorded_at"}
    result = {}
    for view in ("infusion_state", "infusion_orders", "alarms", "program_starts", "ders_alerts"):
        result[view] = sorted(
            json.dumps({k: v for k, v in row.items() if k not in drop and k != "active_now"},
                       default=str, sort_keys=True)
            for row in rows(params, f"SELECT * FROM {view}"))
    return result


def test_streams_interleaved_in_any_order_give_the_same_read_models(
    pg_server: ConnectionParams, migrated_template: str
) -> None:
    from tests.support.postgres import create_database, drop_database

    events = _many_events(2)
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_stream.setdefault(stream_key(parse_event(json.dumps(e))), []).append(e)
    shuffled: list[dict[str, Any]] = []
    queues = [list(q) for q in by_stream.values()]
    generator = random.Random(3)
    while any(queues):  # a different interleaving that keeps each stream's own order
        queue = generator.choice([q for q in queues if q])
        shuffled.append(queue.pop(0))
    first = create_database(pg_server, migrated_template)
    second = create_database(pg_server, migrated_template)
    try:
        for params, sequence in ((first, events), (second, shuffled)):
            for chunk in range(0, len(sequence), 9):
                append(params, sequence[chunk:chunk + 9])
            project(params, batch_size=4)
        assert _without_positions(first) == _without_positions(second)
    finally:
        drop_database(pg_server, first.dbname)
        drop_database(pg_server, second.dbname)


def test_a_second_runner_of_the_same_projection_cannot_apply_a_batch_twice(
    database: ConnectionParams,
) -> None:
    append(database, story())
    projection = registry.build(["infusions"])[0]
    with ProjectionRunner(database.conninfo, projection, batch_size=5) as one, \
            ProjectionRunner(database.conninfo, projection, batch_size=5) as two:
        one.step()
        with pytest.raises(catalog.ConcurrentRunner):
            two.step()
