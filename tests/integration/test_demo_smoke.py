"""The one-command demo, headless and bounded: events arrive, projections catch up, it verifies."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from ledger.store.database import ConnectionParams
from tests.support.cli import ledger

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def test_a_bounded_headless_demo_ingests_projects_and_verifies_the_simulated_traffic(
    database: ConnectionParams, tmp_path: Path
) -> None:
    result = ledger("demo", "--hours", "1", "--scale", "0.25", "--speedup", "0",
                    "--exit-when-done", "--no-api", "--truth", str(tmp_path / "truth.json"),
                    database=database, env={"LEDGER_DATA_DIR": str(tmp_path)}, timeout=600)
    assert result.code == 0, result.stderr[-3000:]
    summary = result.summary
    assert summary["errors"] == []
    assert summary["events"] > 500
    assert summary["ingest"]["ingested"] == summary["events"]
    assert all(position == summary["events"] or position >= summary["events"]
               for position in summary["projections"].values())
    assert summary["verified"] is True
    truth = json.loads((tmp_path / "truth.json").read_text())
    injected = {c["rule"] for c in truth["conditions"] if c["injected"]}
    with psycopg.connect(database.conninfo) as conn:
        found = {row[0] for row in conn.execute("SELECT DISTINCT rule_id FROM discrepancies")}
    # The injected errors of kinds the rules cover were found (per rule, at least one).
    assert injected, "the simulated hour should inject at least one error"
    assert injected & found, f"injected {sorted(injected)}, found {sorted(found)}"
    again = ledger("demo", "--hours", "0.25", "--scale", "0.25", "--speedup", "0",
                   "--exit-when-done", "--no-api", database=database,
                   env={"LEDGER_DATA_DIR": str(tmp_path)}, timeout=600)
    assert again.code == 0, again.stderr[-3000:]
    assert again.summary["events"] > summary["events"]  # a new simulated day, same database
