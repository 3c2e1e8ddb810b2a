"""What-if replays: another rule set over a simulated incident, in memory, never stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.contract import parse_event
from ledger.store.database import ConnectionParams
from ledger.store.event_store import EventStore
from ledger.store.types import Incoming, Origin
from projections import registry
from projections.discrepancies import ruleset
from projections.runtime.runner import ProjectionRunner
from simulator import ErrorKind, MemorySink, SimulationConfig, simulate
from simulator.config import ErrorRates
from tests.support.cli import ledger
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.integration


class Incident:
    """A simulated ward with wrong rates injected; one of them stayed within tolerance."""

    def __init__(self, database: ConnectionParams, truth: dict[str, Any]):
        self.database = database
        rules = {c["id"]: c["rule"] for c in truth["conditions"]}
        # A wrong rate the default R01 tolerance (max(5 %, 0.1 mL/h)) absorbs.
        self.hidden = next(i for i in truth["injections"] if i["kind"] == "wrong_rate"
                           and "R01" not in {rules[c] for c in i["conditions"]})

    def findings(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database.conninfo) as conn:
            return conn.execute("SELECT * FROM discrepancies ORDER BY finding_id").fetchall()

    def events(self) -> int:
        with psycopg.connect(self.database.conninfo) as conn:
            row = conn.execute("SELECT count(*) FROM ledger_events WHERE topic"
                               " NOT IN ('access.recorded', 'access.sealed')").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def incident(pg_server: ConnectionParams, migrated_template: str) -> Iterator[Incident]:
    rates = ErrorRates(**{k.value: 0.0 for k in ErrorKind}).model_copy(
        update={ErrorKind.WRONG_RATE.value: 1.0})
    config = SimulationConfig(seed=4, hours=3, errors=rates, telemetry=False).resized(
        units=1, beds=12, pumps=24)
    sink = MemorySink()
    truth = simulate(config, sink).truth
    database = create_database(pg_server, migrated_template)
    try:
        with EventStore(database) as store:
            store.append([Incoming(parse_event(value.decode()), Origin("file", f"sim:{n}"))
                          for n, (_, value) in enumerate(sink.messages)])
        for projection in registry.build():
            with ProjectionRunner(database.conninfo, projection) as runner:
                runner.run_until_caught_up()
        yield Incident(database, truth)
    finally:
        drop_database(pg_server, database.dbname)


def rule_file(tmp_path: Path, severities: dict[str, dict[str, str]] | None = None,
              **r01: str) -> Path:
    document = json.loads(ruleset.DEFAULT_PATH.read_text())
    document["rules"]["R01"]["params"].update(r01)
    for rule_id, levels in (severities or {}).items():
        document["rules"][rule_id]["severity"].update(levels)
    if r01 or severities:
        document["version"] += "-whatif"
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document))
    return path


def replay_json(incident: Incident, *args: str) -> dict[str, Any]:
    result = ledger("replay", "--order", incident.hidden["order_id"], "--format", "json",
                    *args, database=incident.database)
    assert result.code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_tighter_r01_tolerance_finds_the_wrong_rate_the_default_absorbed(
    incident: Incident, tmp_path: Path
) -> None:
    before, events = incident.findings(), incident.events()
    tight = rule_file(tmp_path, rate_tol_pct="0", rate_tol_floor_ml_h="0")
    what_if = replay_json(incident, "--rules", str(tight))["what_if"]
    assert what_if["ruleset"]["version"].endswith("-whatif")
    added = [f for f in what_if["added"] if f["rule_id"] == "R01"]
    assert added, what_if
    hidden = incident.hidden
    assert {(f["pump_id"], f["channel"], f["order_id"]) for f in added} == {
        (hidden["pump_id"], hidden["channel"], hidden["order_id"])}
    assert all(f["stored"] is False and f["evidence_event_ids"] for f in added)
    assert what_if["findings"] == what_if["baseline"]["findings"] + len(what_if["added"]) - len(
        what_if["removed"])
    # Only in memory: the stored findings and the events are exactly as they were.
    assert incident.findings() == before
    assert incident.events() == events


def test_the_what_if_section_is_in_the_text_and_html_reports(
    incident: Incident, tmp_path: Path
) -> None:
    tight = rule_file(tmp_path, rate_tol_pct="0", rate_tol_floor_ml_h="0")
    text = ledger("replay", "--order", incident.hidden["order_id"], "--rules", str(tight),
                  database=incident.database)
    assert text.code == 0, text.stderr
    (line,) = [x for x in text.stdout.splitlines() if x.startswith("  + added") and "R01" in x]
    assert incident.hidden["pump_id"] in line
    html = ledger("replay", "--order", incident.hidden["order_id"], "--rules", str(tight),
                  "--format", "html", database=incident.database)
    assert "<h2>What-if</h2>" in html.stdout and "added</td><td>R01" in html.stdout


def test_a_changed_severity_is_reported_as_a_change_of_the_same_finding(
    incident: Incident, tmp_path: Path
) -> None:
    # The injected wrong rate was keyed in by hand: R11 (manual programming), S3 by default.
    what_if = replay_json(incident, "--rules", str(rule_file(
        tmp_path, severities={"R11": {"default": "S1"}})))["what_if"]
    assert what_if["added"] == [] and what_if["removed"] == []
    changed = [c for c in what_if["changed"] if c["rule_id"] == "R11"]
    assert changed and all(c["changes"] == {"severity": {"from": "S3", "to": "S1"}}
                           for c in changed)
    assert all(c["finding_id"] == c["candidate_finding_id"] for c in changed)
    assert any(c["stored"] for c in changed)


def test_an_identical_rule_file_changes_nothing(incident: Incident, tmp_path: Path) -> None:
    document = replay_json(incident, "--rules", str(rule_file(tmp_path)))
    what_if = document["what_if"]
    assert (what_if["added"], what_if["removed"], what_if["changed"]) == ([], [], [])
    assert what_if["unchanged"] == what_if["baseline"]["findings"] == what_if["findings"] > 0
    # The stored findings for the selection are what the in-memory baseline computes.
    assert what_if["stored"]["reproduced_by_baseline"] == what_if["stored"]["findings"] > 0
    without = replay_json(incident)
    assert "what_if" not in without
    assert without["timeline"] == document["timeline"]


def test_an_invalid_rule_file_is_refused_naming_the_field(
    incident: Incident, tmp_path: Path
) -> None:
    bad = rule_file(tmp_path, rate_tol_pct="five percent")
    result = ledger("replay", "--order", incident.hidden["order_id"], "--rules", str(bad),
                    database=incident.database)
    assert result.code == 2 and result.stdout == ""
    assert "rules.R01.params.rate_tol_pct" in result.stderr
    document = json.loads(ruleset.DEFAULT_PATH.read_text())
    document["rules"]["R01"]["severity"]["default"] = "S9"
    bad.write_text(json.dumps(document))
    result = ledger("replay", "--order", incident.hidden["order_id"], "--rules", str(bad),
                    database=incident.database)
    assert result.code == 2 and "rules.R01.severity.default" in result.stderr


def test_the_baseline_is_the_sites_rule_set_in_force_and_the_package_carries_both(
    incident: Incident, tmp_path: Path
) -> None:
    site = rule_file(tmp_path, rate_tol_pct="0", rate_tol_floor_ml_h="0")
    shipped = tmp_path / "shipped.json"
    shipped.write_text(ruleset.DEFAULT_PATH.read_text())
    package = tmp_path / "package"
    result = ledger("replay", "--order", incident.hidden["order_id"], "--format", "json",
                    "--rules", str(shipped), "--export", str(package),
                    database=incident.database,
                    env={"LEDGER_DISCREPANCY_RULESET": str(site)})
    assert result.code == 0, result.stderr
    what_if = json.loads(result.stdout)["what_if"]
    # Against a site running the tight file, the shipped defaults would drop the finding.
    assert what_if["baseline"]["version"].endswith("-whatif")
    assert [f["rule_id"] for f in what_if["removed"]] == ["R01"] and what_if["added"] == []
    assert json.loads((package / "ruleset.json").read_text()) == json.loads(site.read_text())
    assert (package / "whatif-ruleset.json").read_text() == shipped.read_text()
    assert json.loads((package / "timeline.json").read_text())["what_if"] == what_if
