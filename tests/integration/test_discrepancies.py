"""The discrepancy engine on real PostgreSQL: through ``ledger import`` and ``ledger project
--once``, rebuilds, restarts in small batches, reviews appended to the ledger, S1 pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ledger.contract import parse_event
from ledger.store import Incoming, Origin
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from projections.discrepancies.projection import DiscrepanciesProjection
from projections.discrepancies.query import Filters, find
from projections.runtime.rebuild import rebuild, table_checksums
from projections.runtime.runner import ProjectionRunner
from tests.support.cli import ledger
from tests.unit.test_rules_support import Story, heparin_running, q

pytestmark = pytest.mark.integration


def _story() -> Story:
    """The 10x heparin error, an unanswered alarm, an uncharted start, a discontinue nobody
    followed, and a second patient's omitted order: S1 pages and timers together."""
    story = Story()
    story.located(0)
    story.located(0, patient="P9", unit="MS3", care_area="Med-Surg")
    story.order(1)
    story.associate(5)
    story.auto_start(10, "144")
    story.order(12, order_id="O9", patient="P9")
    story.alarm("alarm.raised", 20, code="MDC_EVT_FLUID_LINE_OCCL", priority="high")
    story.alarm("alarm.acknowledged", 30)
    story.delivery("infusion.rate_changed", 35, new_rate=q("14.4", "mL/h"))
    story.order_event("order.discontinued", 40)
    for minute in range(45, 160, 5):
        story.tick(minute)
    story.delivery("infusion.stopped", 160)
    story.clock_until(200)
    return story


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _rows(params: ConnectionParams, query: str, *args: Any) -> list[dict[str, Any]]:
    with psycopg.connect(params.conninfo, row_factory=dict_row) as conn:
        return list(conn.execute(query.encode(), args).fetchall())


def _project(params: ConnectionParams, batch_size: int = 2000) -> None:
    with ProjectionRunner(params.conninfo, DiscrepanciesProjection(),
                          batch_size=batch_size) as runner:
        runner.run_until_caught_up()


def _content(params: ConnectionParams) -> list[dict[str, Any]]:
    with psycopg.connect(params.conninfo) as conn:
        found = find(conn)
    return sorted(found, key=lambda f: f["finding_id"])


def test_import_and_project_once_give_the_s1_heparin_finding_and_page_it(
    database: ConnectionParams, tmp_path: Path,
) -> None:
    path = _write(tmp_path / "story.ndjson", _story().events)
    assert ledger("import", str(path), database=database).code == 0
    result = ledger("project", "--once", database=database)
    assert result.code == 0, result.stderr
    assert result.summary["discrepancies"]["events"] == len(_story().events)
    (rate,) = _rows(database, "SELECT * FROM discrepancies WHERE rule_id = 'R01'")
    assert rate["severity"] == "S1" and rate["status"] == "resolved"
    assert rate["evidence"]["expected_ml_h"] == "14.4"
    assert rate["evidence"]["running_ml_h"] == "144"
    assert (rate["patient_id"], rate["order_id"], rate["pump_id"], rate["channel"], rate["unit"]
            ) == ("P1", "O1", "PUMP-1", "A", "MICU")
    assert rate["episode_id"] is not None
    (episode,) = _rows(database, "SELECT episode_id FROM infusion_state WHERE pump_id = 'PUMP-1'")
    assert rate["episode_id"] == episode["episode_id"]
    rules = {r["rule_id"] for r in _rows(database, "SELECT rule_id FROM discrepancies")}
    assert {"R01", "R09", "R10", "R20", "R22", "R25"} <= rules
    pages = _rows(database, "SELECT * FROM discrepancy_outbox ORDER BY seq")
    paged = {p["finding_id"] for p in pages}
    s1 = {r["finding_id"] for r in _rows(
        database, "SELECT finding_id FROM discrepancies WHERE severity = 'S1'")}
    assert paged == s1 and rate["finding_id"] in paged
    assert json.loads(pages[0]["payload"])["rule_id"] in {"R01", "R09", "R22", "R10"}


def test_a_rebuild_reproduces_the_findings_and_pages_nobody_again(
    database: ConnectionParams, tmp_path: Path,
) -> None:
    path = _write(tmp_path / "story.ndjson", _story().events)
    assert ledger("import", str(path), database=database).code == 0
    _project(database)
    before = table_checksums(database.conninfo, DiscrepanciesProjection())
    pages = _rows(database, "SELECT count(*) AS n FROM discrepancy_outbox")[0]["n"]
    result = rebuild(database.conninfo, DiscrepanciesProjection())
    assert result.new_generation == 2
    assert table_checksums(database.conninfo, DiscrepanciesProjection()) == before
    assert _rows(database, "SELECT count(*) AS n FROM discrepancy_outbox")[0]["n"] == pages


def test_small_batches_and_restarts_give_what_one_pass_gives(
    database: ConnectionParams,
) -> None:
    events = _story().events
    half = len(events) // 2
    with EventStore(database) as store:
        store.append([Incoming(parse_event(json.dumps(e)), Origin("file", f"t:{i}"))
                      for i, e in enumerate(events[:half])])
    _project(database, batch_size=3)  # a first runner stops here: a restart follows
    with EventStore(database) as store:
        store.append([Incoming(parse_event(json.dumps(e)), Origin("file", f"t:{i + half}"))
                      for i, e in enumerate(events[half:])])
    _project(database, batch_size=5)
    incremental = table_checksums(database.conninfo, DiscrepanciesProjection())
    rebuild(database.conninfo, DiscrepanciesProjection(), batch_size=10_000)
    assert table_checksums(database.conninfo, DiscrepanciesProjection()) == incremental


def test_a_review_appended_to_the_ledger_becomes_the_finding_s_status(
    database: ConnectionParams,
) -> None:
    story = heparin_running(Story(), rate="144")
    with EventStore(database) as store:
        store.append([Incoming(parse_event(json.dumps(e)), Origin("file", f"t:{i}"))
                      for i, e in enumerate(story.events)])
    _project(database)
    (rate,) = _rows(database, "SELECT finding_id FROM discrepancies WHERE rule_id = 'R01'")
    review = story.review({"finding_id": str(rate["finding_id"])}, 30, "confirmed", "10x pump")
    with EventStore(database) as store:
        store.append([Incoming(parse_event(json.dumps(review), allow_internal=True),
                               Origin("internal", "test-review"))])
    _project(database)
    (reviewed,) = _rows(database, "SELECT * FROM discrepancies WHERE rule_id = 'R01'")
    assert (reviewed["status"], reviewed["review_outcome"], reviewed["review_note"]) == (
        "confirmed", "confirmed", "10x pump")
    assert reviewed["condition_status"] == "open"


def test_findings_are_queryable_by_severity_rule_unit_and_time(
    database: ConnectionParams, tmp_path: Path,
) -> None:
    path = _write(tmp_path / "story.ndjson", _story().events)
    assert ledger("import", str(path), database=database).code == 0
    _project(database)
    with psycopg.connect(database.conninfo) as conn:
        every = find(conn)
        s1 = find(conn, Filters(severities=["S1"]))
        in_ms3 = find(conn, Filters(units=["MS3"]))
        r25 = find(conn, Filters(rules=["R25"]))
    assert len(every) > len(s1) > 0 and all(f["severity"] == "S1" for f in s1)
    assert [f["rule_id"] for f in in_ms3] == ["R25"] and r25 == in_ms3
    assert {"rule_id", "severity", "status", "patient_id", "order_id", "pump_id", "channel",
            "opened_at", "evidence"} <= set(every[0])
    json.dumps(every)  # JSON-ready
    assert _content(database) == sorted(every, key=lambda f: f["finding_id"])


def test_ledger_discrepancies_prints_only_a_json_array_of_findings_on_stdout(
    database: ConnectionParams,
) -> None:
    from tests.support.cli import ledger as run_ledger
    from tests.support.events import VALID_EVENTS

    assert run_ledger("import", str(VALID_EVENTS), database=database).code == 0
    assert run_ledger("project", "--once", database=database).code == 0
    result = run_ledger("discrepancies", "--json", database=database)
    assert result.code == 0, result.stderr
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    for finding in findings:
        assert {"rule_id", "severity", "status", "patient_id", "order_id", "pump_id",
                "channel", "opened_at", "evidence"} <= set(finding)
    only_s1 = json.loads(run_ledger("discrepancies", "--severity", "S1",
                                    database=database).stdout)
    assert all(f["severity"] == "S1" for f in only_s1)
