"""A hospital's own rule set on real PostgreSQL: ``ledger project --rules FILE`` and
LEDGER_DISCREPANCY_RULESET (read by ``ledger project`` and ``ledger rebuild``) judge with
the site's file, and every finding records the version that judged it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.store.database import ConnectionParams
from projections.discrepancies.ruleset import load
from tests.integration.test_discrepancies import _rows, _story, _write
from tests.support.cli import ledger
from tests.unit.test_ruleset_setting import site_file

pytestmark = pytest.mark.integration


def _without_r10(document: dict) -> None:
    """The committee turned R10 off (auto-program edits are reviewed elsewhere) and
    widened R01's tolerance: a site rule set with its own version."""
    document["name"], document["version"] = "north-campus", "north-2026.1"
    document["rules"]["R10"]["enabled"] = False
    document["rules"]["R01"]["params"]["rate_tol_pct"] = "0.10"


def _judged(database: ConnectionParams) -> dict[str, set[str]]:
    rows = _rows(database, "SELECT rule_id, ruleset_version FROM discrepancies")
    return {"rules": {r["rule_id"] for r in rows},
            "versions": {r["ruleset_version"] for r in rows}}


def test_the_site_rule_set_judges_the_findings_by_option_and_by_setting(
    database: ConnectionParams, tmp_path: Path,
) -> None:
    site = site_file(tmp_path, _without_r10)
    events = _write(tmp_path / "story.ndjson", _story().events)
    assert ledger("import", str(events), database=database).code == 0

    result = ledger("project", "--once", "discrepancies", "--rules", str(site),
                    database=database)
    assert result.code == 0, result.stderr
    judged = _judged(database)
    assert judged["versions"] == {"north-2026.1"}
    assert "R10" not in judged["rules"] and {"R01", "R09", "R22"} <= judged["rules"]
    (rate,) = _rows(database, "SELECT params FROM discrepancies WHERE rule_id = 'R01'")
    assert rate["params"]["rate_tol_pct"] == "0.10"

    # Back to the shipped rules: a rebuild re-judges the past (and pages nobody again).
    pages = _rows(database, "SELECT count(*) AS n FROM discrepancy_outbox")[0]["n"]
    assert ledger("rebuild", "discrepancies", database=database).code == 0
    judged = _judged(database)
    assert judged["versions"] == {load().version} and "R10" in judged["rules"]

    # The setting, as a deployment sets it.
    again = ledger("rebuild", "discrepancies", database=database,
                   env={"LEDGER_DISCREPANCY_RULESET": str(site)})
    assert again.code == 0, again.stderr
    assert _judged(database)["versions"] == {"north-2026.1"}
    assert _rows(database, "SELECT count(*) AS n FROM discrepancy_outbox")[0]["n"] == pages
