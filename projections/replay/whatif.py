"""What-if: the findings another rule set would have produced over the replayed events.

The discrepancy engine runs twice in memory over the same events, in the order the
projection applied them (ledger position): once with the rule set in force (the
baseline) and once with the candidate file. Comparing two in-memory runs over the same
events isolates the effect of the rules; comparing a candidate with the stored findings
directly would also show what the replay window leaves out (events of other streams),
so the stored findings are only used to say which differences touch a stored finding.
Nothing is written: the stored findings are never read for update, let alone changed.

Findings are matched by id (a UUIDv5 of rule, condition and trigger, so the same
condition triggered by the same event has the same id under both rule sets); a finding
whose condition fired on another event (a tighter tolerance fires earlier) is matched by
its condition key instead and reported as changed, with the trigger moved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock, ruleset
from projections.discrepancies.replay import findings as engine_findings
from projections.discrepancies.replay import replay as run_engine
from projections.discrepancies.ruleset import RuleSet

#: What makes two findings of the same condition "differ" (the rule set's own version
#: numbers and parameters differ by construction and are shown in the header instead).
COMPARED = ("severity", "evidence", "evidence_event_ids", "resolved_at", "trigger_event_id")
SHOWN = ("finding_id", "rule_id", "severity", "summary", "patient_id", "order_id", "pump_id",
         "channel", "episode_id", "opened_at", "detected_at", "resolved_at",
         "trigger_event_id", "evidence", "evidence_event_ids")


def load_rules(path: Path) -> tuple[RuleSet, str]:
    """The validated rule set in ``path`` (refused as :func:`ruleset.load` refuses it, with
    every problem at its place in the file) and the SHA-256 of the file's bytes."""
    rules = ruleset.load(path)
    return rules, hashlib.sha256(path.read_bytes()).hexdigest()


def what_if(
    records: Sequence[StoredRecord], candidate: RuleSet, baseline: RuleSet, *,
    stored_ids: set[str], start: datetime | None = None,
) -> dict[str, Any]:
    """How the candidate's findings over ``records`` differ from the baseline's."""
    in_order = sorted(records, key=lambda r: r.notification_id)
    since = clock.us(start) if start is not None else None
    base = _findings(in_order, baseline, since)
    other = _findings(in_order, candidate, since)
    added, removed, changed = _compare(base, other)
    reproduced = sorted(stored_ids & set(base))
    return {
        "ruleset": {"name": candidate.name, "version": candidate.version},
        "baseline": {"name": baseline.name, "version": baseline.version,
                     "findings": len(base)},
        "stored": {"findings": len(stored_ids), "reproduced_by_baseline": len(reproduced)},
        "findings": len(other),
        "added": [_shown(f, stored_ids) for f in added],
        "removed": [_shown(f, stored_ids) for f in removed],
        "changed": changed_entries(changed, stored_ids),
        "unchanged": len(base) - len(removed) - len(changed),
    }


def _findings(records: Sequence[StoredRecord], rules: RuleSet,
              since: int | None) -> dict[str, dict[str, Any]]:
    engine = run_engine(records, rules)
    return {f["finding_id"]: f for f in engine_findings(engine)
            if since is None or f["opened_at"] >= since}


def _compare(base: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], list[tuple[dict[str, Any], dict[str, Any]]]]:
    pairs = [(base[fid], other[fid]) for fid in base if fid in other]
    only_base = {fid: f for fid, f in base.items() if fid not in other}
    only_other = {fid: f for fid, f in other.items() if fid not in base}
    # The same condition fired by another event: one finding per condition on each side.
    base_keys = _unique_by_condition(only_base.values())
    for key, found in _unique_by_condition(only_other.values()).items():
        if key in base_keys:
            pairs.append((base_keys[key], found))
            only_base.pop(base_keys[key]["finding_id"])
            only_other.pop(found["finding_id"])
    changed = [(b, o) for b, o in pairs if any(b.get(f) != o.get(f) for f in COMPARED)]
    return _ordered(only_other.values()), _ordered(only_base.values()), sorted(
        changed, key=lambda pair: _order_key(pair[0]))


def _unique_by_condition(found: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for finding in found:
        if finding.get("condition_key"):
            by_key.setdefault(finding["condition_key"], []).append(finding)
    return {key: group[0] for key, group in by_key.items() if len(group) == 1}


def _order_key(finding: dict[str, Any]) -> tuple[int, str, str]:
    return finding["opened_at"], finding["rule_id"], finding["finding_id"]


def _ordered(found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(found, key=_order_key)


def _readable(key: str, value: Any) -> Any:
    return clock.iso(value) if key.endswith("_at") and isinstance(value, int) else value


def _shown(finding: dict[str, Any], stored_ids: set[str]) -> dict[str, Any]:
    shown = {key: _readable(key, finding.get(key)) for key in SHOWN}
    shown["stored"] = finding["finding_id"] in stored_ids
    return shown


def changed_entries(changed: list[tuple[dict[str, Any], dict[str, Any]]],
                    stored_ids: set[str]) -> list[dict[str, Any]]:
    entries = []
    for before, after in changed:
        entries.append({
            **{key: _readable(key, after.get(key)) for key in (
                "rule_id", "summary", "patient_id", "order_id", "pump_id", "channel",
                "episode_id", "opened_at")},
            "finding_id": before["finding_id"],
            "candidate_finding_id": after["finding_id"],
            "stored": before["finding_id"] in stored_ids,
            "changes": {field: {"from": _readable(field, before.get(field)),
                                "to": _readable(field, after.get(field))}
                        for field in COMPARED if before.get(field) != after.get(field)},
        })
    return entries
