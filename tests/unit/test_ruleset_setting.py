"""A site's own rule-set file: LEDGER_DISCREPANCY_RULESET / ``ledger project --rules FILE``
reach the engine, and an invalid file is refused before anything runs, naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import ConfigurationError
from ledger.settings import LedgerSettings
from projections import registry
from projections.discrepancies.projection import DiscrepanciesProjection
from projections.discrepancies.ruleset import DEFAULT_PATH, RuleSetError, load
from tests.support.cli import ledger


def site_file(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    document = json.loads(DEFAULT_PATH.read_text())
    change(document)
    path = tmp_path / "site-ruleset.json"
    path.write_text(json.dumps(document))
    return path


def _site(document: dict[str, Any]) -> None:
    document["name"], document["version"] = "north-campus", "north-2026.1"
    document["rules"]["R01"]["params"]["rate_tol_pct"] = "0.10"


def test_the_registry_builds_the_engine_with_the_site_rule_set(tmp_path: Path) -> None:
    path = site_file(tmp_path, _site)
    by_name = {p.name: p for p in registry.build(ruleset=path)}
    engine = by_name["discrepancies"]
    assert isinstance(engine, DiscrepanciesProjection)
    assert engine.ruleset.version == "north-2026.1"
    assert str(engine.ruleset.params("R01").rate_tol_pct) == "0.10"
    assert len(by_name) == len(registry.FACTORIES)
    (default,) = registry.build(["discrepancies"])
    assert isinstance(default, DiscrepanciesProjection)
    assert default.ruleset.version == load().version != "north-2026.1"


def test_the_setting_is_read_from_ledger_discrepancy_ruleset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("LEDGER_DISCREPANCY_RULESET", str(tmp_path / "site.json"))
    assert LedgerSettings(_env_file=None).discrepancy_ruleset == tmp_path / "site.json"
    monkeypatch.delenv("LEDGER_DISCREPANCY_RULESET")
    assert LedgerSettings(_env_file=None).discrepancy_ruleset is None


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d["rules"]["R01"]["params"].__setitem__("rate_tol_pct", "five"),
     "rules.R01.params.rate_tol_pct: Input should be a valid decimal (found 'five')"),
    (lambda d: d["care_areas"]["NICU"]["R01"]["params"].__setitem__("rate_tol_floor_ml_h", -1),
     "care_areas.NICU.R01.params.rate_tol_floor_ml_h"),
    (lambda d: d["rules"]["R22"]["severity"].__setitem__("escalated", "S0"),
     "rules.R22.severity.escalated: Input should be 'S1', 'S2', 'S3' or 'S4'"),
    (lambda d: d.pop("late_data_allowance_min"), "late_data_allowance_min: Field required"),
    (lambda d: d["rules"]["R09"]["params"].__setitem__("grace_minutes", "15"),
     "rules.R09: Value error, parameters without a rationale in param_docs: ['grace_minutes']"),
])
def test_an_invalid_rule_set_is_refused_naming_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], named: str,
) -> None:
    path = site_file(tmp_path, change)
    with pytest.raises(RuleSetError) as refused:
        load(path)
    assert named in str(refused.value) and str(path) in str(refused.value)
    assert isinstance(refused.value, ConfigurationError)  # the CLI's exit 2, not a traceback


def test_an_unreadable_or_malformed_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="cannot read it: No such file"):
        load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",')
    with pytest.raises(RuleSetError, match=r"\(the file\): Invalid JSON"):
        load(broken)


def test_ledger_project_refuses_an_invalid_file_before_touching_the_database(
    tmp_path: Path,
) -> None:
    bad = site_file(tmp_path, lambda d: d["rules"]["R01"]["params"].__setitem__(
        "rate_tol_pct", "five"))
    # No database is configured: getting past the rule set would start an embedded server.
    environment = {"LEDGER_DATA_DIR": str(tmp_path / "data")}
    by_option = ledger("project", "--once", "--rules", str(bad), env=environment, timeout=60)
    by_setting = ledger("project", "--once", env={**environment,
                                                   "LEDGER_DISCREPANCY_RULESET": str(bad)},
                        timeout=60)
    for result in (by_option, by_setting):
        assert result.code == 2, result.stderr
        assert "rules.R01.params.rate_tol_pct" in result.stderr and result.stdout == ""
    assert not (tmp_path / "data").exists()
