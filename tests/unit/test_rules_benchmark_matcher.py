"""The quality benchmark's matcher (bench/discrepancy_quality.py) on a hand-made truth."""

from __future__ import annotations

from typing import Any

from bench.discrepancy_quality import instant, match


def _truth() -> dict[str, Any]:
    def condition(cid: str, rule: str, time: str, **ids: Any) -> dict[str, Any]:
        return {"id": cid, "rule": rule, "time": time, "event_ids": [f"e-{cid}"],
                **{k: ids.get(k) for k in ("patient_id", "order_id", "pump_id", "channel")},
                **({"due_at": ids["due_at"]} if "due_at" in ids else {})}

    return {
        "end": "2026-03-01T12:00:00Z",
        "parameters": {"R01": {}, "R20": {}, "R22": {}},
        "conditions": [
            condition("C1", "R01", "2026-03-01T08:00:00Z", pump_id="P1", channel="A",
                      order_id="O1"),
            condition("C2", "R01", "2026-03-01T09:00:00Z", pump_id="P2", channel="A"),
            condition("C3", "R20", "2026-03-01T08:00:00Z", pump_id="P1", channel="A",
                      due_at="2026-03-01T09:00:00Z"),
            condition("C4", "R22", "2026-03-01T11:56:00Z", pump_id="P3",
                      due_at="2026-03-01T11:58:00Z"),  # undecidable at the end of the data
        ],
        "dont_care": [condition("D1", "R22", "2026-03-01T10:00:00Z", pump_id="P1")],
        "suppression_windows": [{"pump_id": "P4", "rules": ["*"], "from": "2026-03-01T07:00:00Z",
                                 "to": "2026-03-01T08:00:00Z"}],
    }


def _finding(rule: str, opened: str, triggered: str | None = None, **ids: Any) -> dict:
    return {"rule_id": rule, "opened_at": instant(opened),
            "triggered_at": instant(triggered or opened), **ids}


def test_findings_match_conditions_one_to_one_by_rule_subject_and_time() -> None:
    findings = [
        _finding("R01", "2026-03-01T08:00:02Z", pump_id="P1", channel="A", order_id="O1"),
        _finding("R01", "2026-03-01T08:00:03Z", pump_id="P1", channel="A", order_id="O1"),
        _finding("R20", "2026-03-01T09:00:01Z", "2026-03-01T08:00:00Z", pump_id="P1",
                 channel="A"),
    ]
    result = match(findings, _truth())
    assert result["per_rule"]["R01"] == {"precision": 0.5, "recall": 0.5, "tp": 1, "fp": 1,
                                         "fn": 1}
    assert result["per_rule"]["R20"]["tp"] == 1
    assert result["undecided_at_end"] == 1


def test_a_different_id_on_either_side_is_no_match() -> None:
    findings = [_finding("R01", "2026-03-01T09:00:00Z", pump_id="P2", channel="B")]
    result = match(findings, _truth())
    assert result["per_rule"]["R01"]["tp"] == 0 and result["per_rule"]["R01"]["fp"] == 1


def test_dont_care_and_suppressed_findings_count_neither_way() -> None:
    findings = [
        _finding("R22", "2026-03-01T10:02:00Z", pump_id="P1"),
        _finding("R01", "2026-03-01T07:30:00Z", pump_id="P4"),
    ]
    result = match(findings, _truth())
    assert result["fp"] == 0


def test_a_condition_whose_trigger_the_ledger_refused_is_set_aside() -> None:
    recorded = {"e-C1", "e-C3", "e-C4"}
    result = match([], _truth(), recorded=recorded)
    assert result["trigger_refused_by_contract"] == 1
    assert result["per_rule"]["R01"]["fn"] == 1


def test_rules_the_truth_does_not_model_are_reported_apart() -> None:
    result = match([_finding("R15", "2026-03-01T08:00:00Z", pump_id="P1")], _truth())
    assert result["unscored_findings"] == {"R15": 1}
    assert result["fp"] == 0
