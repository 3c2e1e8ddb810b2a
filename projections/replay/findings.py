"""The discrepancy findings a replay shows: when each fired and resolved, read from storage.

Replay does not re-judge (except in what-if mode): it shows the findings the engine stored,
placed on the timeline by their evidence event (fired) and resolving event (resolved), and
lists those open at each moment. Without the discrepancy engine's view, there are none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row


class FindingTimeline:
    def __init__(self, findings: list[dict[str, Any]]):
        self.findings = findings
        self._fired: dict[str, list[dict[str, Any]]] = {}
        self._resolved: dict[str, list[dict[str, Any]]] = {}
        for finding in findings:
            trigger = finding.get("trigger_event_id")
            if trigger:
                self._fired.setdefault(trigger, []).append(finding)
            resolving = finding.get("resolved_event_id")
            if resolving:
                self._resolved.setdefault(resolving, []).append(finding)

    def at_event(self, event_id: str, at: datetime) -> tuple[list[dict], list[dict]]:
        return self._fired.get(event_id, []), self._resolved.get(event_id, [])

    def open_at(self, at: datetime) -> list[dict[str, Any]]:
        return [
            {"finding_id": f["finding_id"], "rule_id": f["rule_id"], "severity": f["severity"]}
            for f in self.findings
            if f["detected_at"] <= at and (f.get("resolved_at") is None or f["resolved_at"] > at)
        ]


def load_findings(conn: psycopg.Connection[Any], episode_ids: set[str],
                  streams: set[str]) -> FindingTimeline:
    """Findings about the selected episodes, if the discrepancy engine's view exists."""
    exists = conn.execute("SELECT to_regclass('discrepancies')").fetchone()
    if not exists or exists[0] is None:
        return FindingTimeline([])
    cur = conn.cursor(row_factory=dict_row)
    columns = {row["column_name"] for row in cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'discrepancies'")}
    if not {"finding_id", "rule_id", "severity", "detected_at"} <= columns:
        return FindingTimeline([])
    cur.execute("SELECT * FROM discrepancies WHERE episode_id::text = ANY(%s)"
                " ORDER BY detected_at, finding_id", (sorted(episode_ids),))
    findings = []
    for row in cur.fetchall():
        evidence = [str(e) for e in (row.get("evidence_event_ids") or [])]
        findings.append({
            "finding_id": str(row["finding_id"]), "rule_id": row["rule_id"],
            "severity": row["severity"], "summary": row.get("summary"),
            "detected_at": row["detected_at"], "resolved_at": row.get("resolved_at"),
            "trigger_event_id": str(row.get("trigger_event_id") or (evidence[-1] if evidence
                                                                    else "")),
            "resolved_event_id": str(row["resolved_event_id"])
            if row.get("resolved_event_id") else None,
        })
    return FindingTimeline(findings)
