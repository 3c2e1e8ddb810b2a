"""Findings: identity, lifecycle (open -> resolved; reviews) and what a batch must write.

A finding is a plain dict (JSON-ready; instants as integer microseconds) holding the rule
id, rule version and rule-set version, severity, subject ids, the event-time it opened
and was detected, evidence (values compared, units, tolerance) with the evidence event
ids, and the parameters used. Its id is a UUIDv5 of rule, condition and triggering event,
so a rebuild reproduces it exactly.

Two kinds:

* *tracked* findings describe a condition the engine watches (a wrong rate, an unanswered
  alarm); they stay in memory (``live``, by condition key) until the condition clears,
  which resolves them with the resolving event;
* other findings record something that happened (an override, a late chart); they are
  written once and leave memory. A later event that ends them (a retraction, a late
  chart) or a person's review reaches them by id: in memory when possible, otherwise as
  a deferred operation the writer applies with SQL in the same transaction.

``status`` is the review outcome when a person reviewed the finding, else the condition
status (``open`` / ``resolved``); both are kept in their own columns too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from projections.discrepancies.ruleset import SEVERITY_RANK

FINDING_NAMESPACE = uuid.UUID("0f1c9d5e-3b2a-5c7d-8e9f-1a2b3c4d5e6f")
OUTBOX_NAMESPACE = uuid.UUID("7d3e1f2a-9b8c-5d4e-a1f2-3b4c5d6e7f80")
REVIEW_OUTCOMES = frozenset({"confirmed", "false_positive", "accepted_risk"})


def finding_id(rule_id: str, condition: str, trigger_event_id: str) -> str:
    """Deterministic id: the same rule, condition and trigger give the same finding."""
    return str(uuid.uuid5(FINDING_NAMESPACE, f"{rule_id}|{condition}|{trigger_event_id}"))


@dataclass
class Subject:
    """Who and what a finding is about."""

    facility_id: str = "default"
    patient_id: str | None = None
    order_id: str | None = None
    pump_id: str | None = None
    channel: str | None = None
    episode_id: str | None = None
    alarm_id: str | None = None
    unit: str | None = None
    care_area: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "facility_id": self.facility_id, "patient_id": self.patient_id,
            "order_id": self.order_id, "pump_id": self.pump_id, "channel": self.channel,
            "episode_id": self.episode_id, "alarm_id": self.alarm_id, "unit": self.unit,
            "care_area": self.care_area,
        }


@dataclass
class Operation:
    """A change to a finding that is not in memory, applied by the writer with SQL."""

    kind: str  # "resolve" | "review"
    finding_id: str
    at: int
    event_id: str
    position: int
    outcome: str | None = None
    note: str | None = None


@dataclass
class Book:
    """The findings the engine holds and the changes one batch must write."""

    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    outbox: dict[str, dict[str, Any]] = field(default_factory=dict)

    def open_for(self, key: str) -> dict[str, Any] | None:
        return self.live.get(key)

    def add(self, finding: dict[str, Any]) -> dict[str, Any]:
        if finding["tracked"]:
            self.live[finding["condition_key"]] = finding
        self.changed[finding["finding_id"]] = finding
        if finding["severity"] == "S1":
            self._page(finding)
        return finding

    def touch(self, finding: dict[str, Any], position: int) -> None:
        finding["last_position"] = position
        self.changed[finding["finding_id"]] = finding

    def escalate(self, finding: dict[str, Any], severity: str, position: int) -> bool:
        """Raise the severity (never lower it); True when it changed."""
        if SEVERITY_RANK[severity] >= SEVERITY_RANK[finding["severity"]]:
            return False
        finding["severity"] = severity
        self.touch(finding, position)
        if severity == "S1":
            self._page(finding)
        return True

    def resolve(self, finding: dict[str, Any], at: int, event_id: str | None,
                position: int) -> None:
        if finding["condition_status"] != "open":
            return
        finding["condition_status"] = "resolved"
        finding["resolved_at"] = max(at, finding["opened_at"])
        finding["resolving_event_id"] = event_id
        if finding["review_outcome"] is None:
            finding["status"] = "resolved"
        if finding["tracked"]:
            self.live.pop(finding["condition_key"], None)
            finding["tracked"] = False
        self.touch(finding, position)

    def resolve_key(self, key: str, at: int, event_id: str | None, position: int) -> bool:
        finding = self.live.get(key)
        if finding is None:
            return False
        self.resolve(finding, at, event_id, position)
        return True

    def resolve_id(self, fid: str, at: int, event_id: str, position: int) -> None:
        finding = self.changed.get(fid) or self._live_by_id(fid)
        if finding is not None:
            self.resolve(finding, at, event_id, position)
        else:
            self.operations.append(Operation("resolve", fid, at, event_id, position))

    def review(self, fid: str, outcome: str, note: str | None, at: int, event_id: str,
               position: int) -> bool:
        """Apply a review to a finding in memory; False when the writer must do it."""
        finding = self.changed.get(fid) or self._live_by_id(fid)
        if finding is None:
            self.operations.append(Operation("review", fid, at, event_id, position,
                                             outcome, note))
            return False
        apply_review(finding, outcome, note, at, event_id)
        self.touch(finding, position)
        return True

    def _live_by_id(self, fid: str) -> dict[str, Any] | None:
        for finding in self.live.values():
            if finding["finding_id"] == fid:
                return finding
        return None

    def _page(self, finding: dict[str, Any]) -> None:
        outbox_id = str(uuid.uuid5(OUTBOX_NAMESPACE, f"{finding['finding_id']}|S1"))
        self.outbox[outbox_id] = finding

    def clear_batch(self) -> None:
        self.changed.clear()
        self.operations.clear()
        self.outbox.clear()


def apply_review(finding: dict[str, Any], outcome: str, note: str | None, at: int,
                 event_id: str) -> None:
    finding["review_outcome"] = outcome
    finding["review_note"] = note
    finding["reviewed_at"] = at
    finding["review_event_id"] = event_id
    finding["status"] = outcome
