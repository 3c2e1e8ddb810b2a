"""The engine as a whole: findings carry their provenance, folds are deterministic and read no
wall clock, a restart from persisted state reproduces an uninterrupted run, rule sets are
validated data."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from projections.discrepancies import ruleset, store
from projections.discrepancies.engine import Engine
from projections.discrepancies.findings import apply_review
from projections.discrepancies.replay import findings, records, replay
from projections.discrepancies.ruleset import DEFAULT_PATH, RuleSet
from tests.unit.test_rules_support import Story, heparin_running, q


def busy_story() -> Story:
    """Many rules at once: a wrong rate, an unanswered alarm, an uncharted start, a
    discontinue not followed, an override, and a second patient's omission."""
    story = heparin_running(Story(), rate="144")
    story.add("ders.limit_alert_raised", 12, story.channel_subject(), {
        "alert_id": "D1", "limit_kind": "soft", "parameter": "rate", "bound": "upper",
        "limit": q(100, "mL/h"), "programmed": q(144, "mL/h")})
    story.add("ders.limit_alert_resolved", 12.1, story.channel_subject(), {
        "alert_id": "D1", "outcome": "overridden", "seconds_to_resolve": "1.2"})
    story.alarm("alarm.raised", 20, code="MDC_EVT_FLUID_LINE_OCCL", priority="high")
    story.tick(22, rate="144")
    story.order(25, order_id="O9", patient="P9")
    story.alarm("alarm.acknowledged", 30)
    story.delivery("infusion.rate_changed", 35, new_rate=q("14.4", "mL/h"))
    story.order_event("order.discontinued", 40)
    for minute in range(45, 150, 7):
        story.tick(minute)
    story.delivery("infusion.stopped", 150)
    story.clock_until(200)
    return story


def _normal(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((json.loads(json.dumps(f, sort_keys=True, default=str)) for f in found),
                  key=lambda f: f["finding_id"])


def test_every_finding_records_rule_versions_parameters_and_evidence_events() -> None:
    found = busy_story().run()
    rules = {f["rule_id"] for f in found}
    assert {"R01", "R13", "R20", "R22", "R09", "R25"} <= rules
    for finding in found:
        spec = ruleset.load().rules[finding["rule_id"]]
        assert finding["rule_version"] == spec.version
        assert finding["ruleset_version"] == ruleset.load().version
        assert finding["params"] == ruleset.load().raw_params(finding["rule_id"])
        assert finding["trigger_event_id"] in finding["evidence_event_ids"]
        assert finding["severity"] in ("S1", "S2", "S3", "S4")
        assert finding["opened_at"] <= finding["detected_at"]


def test_the_same_events_give_the_same_findings_with_the_same_ids() -> None:
    story = busy_story()
    assert _normal(story.run()) == _normal(story.run())


def test_folding_never_reads_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    story = busy_story()
    expected = _normal(story.run())

    def refuse() -> float:
        raise AssertionError("the engine read the wall clock")

    monkeypatch.setattr(time, "time", refuse)
    monkeypatch.setattr(time, "time_ns", refuse)
    assert _normal(story.run()) == expected


def _restart(items: list[Any], cut: int) -> list[dict[str, Any]]:
    """Run to ``cut``, persist as the writer would (JSON), restore a new engine, finish.

    The written findings are what the findings table would hold: the first engine's, then
    the second engine's changes and its SQL operations applied on top."""
    first = Engine(ruleset.load())
    for record in items[:cut]:
        first.process(record)
    rows = [(k, key, orjson.loads(orjson.dumps(state))) for k, key, state in store.dump(first)]
    written = {f["finding_id"]: orjson.loads(orjson.dumps(f)) for f in first.book.changed.values()}
    live = [copy.deepcopy(written[f["finding_id"]]) for f in first.book.live.values()]
    second = Engine(ruleset.load())
    store.restore(second, rows, live)
    for record in items[cut:]:
        second.process(record)
    written.update(orjson.loads(orjson.dumps(second.book.changed)))
    for op in second.book.operations:
        target = written.get(op.finding_id)
        if target is None:
            continue
        if op.kind == "resolve" and target["condition_status"] == "open":
            target.update({"condition_status": "resolved", "resolved_at": max(
                op.at, target["opened_at"]), "resolving_event_id": op.event_id,
                "status": target["status"] if target["review_outcome"] else "resolved"})
        elif op.kind == "review":
            apply_review(target, op.outcome or "", op.note, op.at, op.event_id)
    for finding in written.values():
        finding["tracked"] = False  # bookkeeping of where the finding lived, not content
        finding["last_position"] = 0
    return list(written.values())


ITEMS = records(busy_story().events)


def _uninterrupted() -> list[dict[str, Any]]:
    found = findings(replay(ITEMS))
    for finding in found:
        finding["tracked"] = False
        finding["last_position"] = 0
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(ITEMS)))
def test_a_restart_from_persisted_state_at_any_event_reproduces_the_findings(cut: int) -> None:
    assert _normal(_restart(ITEMS, cut)) == _normal(_uninterrupted())


def test_a_disabled_rule_produces_no_findings() -> None:
    data = json.loads(DEFAULT_PATH.read_text())
    data["rules"]["R01"]["enabled"] = False
    rules = RuleSet.model_validate(data)
    assert heparin_running(Story(), rate="144").rule("R01", rules) == []


def test_a_care_area_override_changes_the_tolerance_used_and_recorded() -> None:
    # 0.07 mL/h off a 1 mL/h order: outside a 0.05 floor (NICU), inside the 0.1 default.
    def story(care_area: str) -> Story:
        s = Story()
        s.order(0, medication={"name": "fentanyl"}, concentration=None, dose=None,
                dosing_weight=None, rate=q(1, "mL/h"))
        s.associate(1)
        s.confirm(2, mode="manual", medication={"name": "fentanyl"}, concentration=None,
                  dose=None, dosing_weight=None, rate=q("1.07", "mL/h"), care_area=care_area)
        s.start(3, "1.07")
        return s

    assert story("ICU").rule("R01") == []
    (finding,) = story("NICU").rule("R01")
    assert finding["params"]["rate_tol_floor_ml_h"] == "0.05"


def test_a_rule_set_with_an_undocumented_parameter_is_refused() -> None:
    data = json.loads(DEFAULT_PATH.read_text())
    del data["rules"]["R01"]["param_docs"]["rate_tol_pct"]
    with pytest.raises(ValidationError, match="without a rationale"):
        RuleSet.model_validate(data)


def test_a_rule_set_with_an_unknown_rule_or_parameter_is_refused() -> None:
    data = json.loads(DEFAULT_PATH.read_text())
    data["rules"]["R99"] = data["rules"]["R05"]
    with pytest.raises(ValidationError, match="without an implementation"):
        RuleSet.model_validate(data)
    data = json.loads(DEFAULT_PATH.read_text())
    data["rules"]["R01"]["params"]["rate_tol_pcnt"] = "0.05"
    data["rules"]["R01"]["param_docs"]["rate_tol_pcnt"] = "typo"
    with pytest.raises(ValidationError):
        RuleSet.model_validate(data)


def test_the_shipped_rule_set_documents_every_rule_and_parameter() -> None:
    rules = ruleset.load()
    assert len(rules.rules) >= 20
    required = {"R01", "R02", "R03", "R04", "R05", "R06", "R07", "R08", "R09", "R10", "R11",
                "R12", "R13", "R14", "R17", "R20", "R21", "R22", "R25", "R27", "R28", "R30"}
    assert required <= set(rules.rules)
    for spec in rules.rules.values():
        assert spec.rationale and spec.source
        assert set(spec.params) == set(spec.param_docs)


def test_orders_ended_two_days_ago_are_forgotten_unless_something_still_runs_them() -> None:
    story = Story()
    story.order(0, order_id="GONE")
    story.order_event("order.discontinued", 10, order_id="GONE")
    heparin_running(story)  # order O1 runs on PUMP-1
    story.order_event("order.discontinued", 20)  # ...and keeps running after it
    story.clock_until(3 * 24 * 60)
    engine = replay(story.events)
    assert "order:default:GONE" not in engine.world.orders
    assert "order:default:O1" in engine.world.orders
